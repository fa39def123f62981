"""`clone_model`: the same architecture with new layers (fresh weights), as Keras's."""

from rnnkit import tree
from rnnkit.layers.input_layer import Input
from rnnkit.models.functional import Model
from rnnkit.models.sequential import Sequential
from rnnkit.symbolic import KerasTensor


def _is_graph(model):
    """Whether a model is Sequential or functional (so it can be cloned layer by layer)."""
    return isinstance(model, Sequential) or (isinstance(model, Model) and model._nodes is not None)


def _fresh_copy(layer):
    return type(layer).from_config(layer.get_config())


def clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive=False):
    """A new model of the same architecture, built from new layers (fresh weights; copy them with
    `new.set_weights(model.get_weights())`).

    Args:
        model: A Sequential, functional or subclassed model.
        input_tensors: Optional symbolic inputs for the clone (one for a Sequential model);
            new `Input`s of the same shapes by default.
        clone_function: Optional `fn(layer) -> layer` making each new layer; by default
            `type(layer).from_config(layer.get_config())`. `lambda layer: layer` shares the layers.
        call_function: Optional `fn(layer, *args, **kwargs)` that calls each new layer on its
            inputs (functional models only), e.g. to insert layers.
        recursive: Whether to clone the Sequential and functional models nested in `model` layer
            by layer with the same functions, instead of passing them to `clone_function`.

    Returns:
        The new model, with the same name.

    Raises:
        ValueError: If an argument does not apply to this kind of model.
    """

    def clone_layer(layer):
        if recursive and _is_graph(layer):
            return clone_model(layer, clone_function=clone_function, call_function=call_function, recursive=True)
        return (clone_function or _fresh_copy)(layer)

    if isinstance(model, Sequential):
        if call_function is not None:
            raise ValueError(
                "call_function: only functional models call their layers while they are built, received a Sequential "
                "model."
            )
        return _clone_sequential(model, clone_layer, input_tensors)
    if _is_graph(model):
        return _clone_functional(model, clone_layer, call_function, input_tensors)
    if clone_function is not None or call_function is not None or input_tensors is not None:
        raise ValueError(
            f"model: clone_function, call_function and input_tensors apply to Sequential and functional models, "
            f"received the subclassed model {type(model).__name__}"
        )
    return type(model).from_config(model.get_config())


def _clone_sequential(model, clone_layer, input_tensors):
    if input_tensors is not None:
        if isinstance(input_tensors, (list, tuple)):
            if len(input_tensors) != 1:
                raise ValueError(
                    f"input_tensors: expected one tensor for a Sequential model, received {len(input_tensors)}"
                )
            input_tensors = input_tensors[0]
        if not isinstance(input_tensors, KerasTensor) or input_tensors.input_layer is None:
            raise ValueError(f"input_tensors: expected an `rk.Input` tensor, received {input_tensors!r:.80}")
        first = [input_tensors]
    elif model._input is not None:
        first = [Input(batch_shape=model._input.shape, dtype=model._input.dtype.name)]
    else:
        first = []
    return Sequential(
        first + [clone_layer(layer) for layer in model.layers], trainable=model.trainable, name=model.name
    )


def _clone_functional(model, clone_layer, call_function, input_tensors):
    if input_tensors is None:
        inputs = tree.map_structure(
            lambda x: Input(batch_shape=x.shape, dtype=x.dtype.name, name=x.name), model._inputs
        )
    else:
        inputs = input_tensors
    new_inputs = tree.flatten(inputs)
    if len(new_inputs) != len(model._sources):
        raise ValueError(
            f"input_tensors: expected {len(model._sources)} tensors for model {model.name}, received {len(new_inputs)}"
        )
    computed = {id(old): new for old, new in zip(model._sources, new_inputs)}
    clones = {}
    for node in model._nodes:
        if id(node.layer) not in clones:
            clones[id(node.layer)] = clone_layer(node.layer)
        layer = clones[id(node.layer)]
        args, kwargs = tree.map_structure(
            lambda x: computed[id(x)] if isinstance(x, KerasTensor) else x, (node.args, node.kwargs)
        )
        outputs = layer(*args, **kwargs) if call_function is None else call_function(layer, *args, **kwargs)
        for old, new in zip(tree.flatten(node.outputs), tree.flatten(outputs)):
            computed[id(old)] = new
    return Model(inputs, tree.map_structure(lambda x: computed[id(x)], model._outputs), name=model.name)
