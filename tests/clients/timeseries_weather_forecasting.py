"""Client: keras-io `examples/timeseries/timeseries_weather_forecasting.py` ("Timeseries
forecasting for weather prediction"), written again for rnnkit.

What differs from the example:
- the imports (`import rnnkit as keras`; matplotlib's pyplot as in the example, on whatever
  backend MPLBACKEND names - the tests use Agg, so `plt.show()` opens no window);
- the data: the example downloads the Jena climate CSV (420,551 rows every 10 minutes, a
  "Date Time" column and 14 float features) and reads it with pandas; here `jena_like_table`
  makes 7,000 rows of the same 14 features from smooth daily/yearly cycles plus noise, with
  the physical relations roughly kept (Tpot ~ T + 273, rho falls as T rises...), so the
  temperature 12 hours ahead can be learned from the 5 past days;
- pandas is not an rnnkit dependency, so the table is a numpy array with a list of column names,
  and the example's DataFrame steps are written with numpy: `df[keys]` is a column selection,
  `.loc[a:b]`/`.iloc[a:b]` row slices, `data.corr()` is `np.corrcoef`, the raw plot draws
  each column with `plt.plot` instead of `Series.plot`;
- `tensor.numpy()` is a tf.Tensor method: rnnkit's `timeseries_dataset_from_array` gives
  numpy batches (with tf.data's `take`), so the script uses the arrays as they are;
- the checkpoint file is "model_checkpoint.weights.h5" (Keras 3 requires that suffix with
  `save_weights_only=True`; the example predates it and writes "model_checkpoint.h5");
- 2 epochs instead of 10; the history of `fit` is kept in `history` (as in the example), the
  single-step predictions in `predictions`.
The split (71.5 %), normalisation with the training rows' mean/std, the 7 selected features,
`keras.preprocessing.timeseries_dataset_from_array(..., sequence_length=120, sampling_rate=6,
batch_size=256)` with labels 792 rows ahead, the model (Input -> LSTM(32) -> Dense(1)),
Adam(0.001) with mse, EarlyStopping and ModelCheckpoint(save_best_only) on val_loss, the loss
plot and the single-step prediction plots follow the example.
"""

import matplotlib.pyplot as plt
import numpy as np

import rnnkit as keras

titles = [
    "Pressure",
    "Temperature",
    "Temperature in Kelvin",
    "Temperature (dew point)",
    "Relative Humidity",
    "Saturation vapor pressure",
    "Vapor pressure",
    "Vapor pressure deficit",
    "Specific humidity",
    "Water vapor concentration",
    "Airtight",
    "Wind speed",
    "Maximum wind speed",
    "Wind direction in degrees",
]
feature_keys = [
    "p (mbar)",
    "T (degC)",
    "Tpot (K)",
    "Tdew (degC)",
    "rh (%)",
    "VPmax (mbar)",
    "VPact (mbar)",
    "VPdef (mbar)",
    "sh (g/kg)",
    "H2OC (mmol/mol)",
    "rho (g/m**3)",
    "wv (m/s)",
    "max. wv (m/s)",
    "wd (deg)",
]
colors = ["blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan"]
date_time_key = "Date Time"


def jena_like_table(rows=7000, seed=3):
    """Stands in for the Jena CSV: (date strings, float64 array rows x 14 in feature_keys order)."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=np.float64)
    day = 2 * np.pi * t / 144  # 144 rows of 10 minutes
    year = 2 * np.pi * t / (144 * 365)
    temp = 9 - 10 * np.cos(year) - 4 * np.cos(day) + np.cumsum(rng.normal(0, 0.05, rows)) + rng.normal(0, 0.2, rows)
    pressure = 989 + 6 * np.sin(day / 9.3) + rng.normal(0, 0.3, rows)
    rh = np.clip(75 + 15 * np.cos(day) + rng.normal(0, 3, rows), 10, 100)
    vp_max = 6.11 * np.exp(17.27 * temp / (temp + 237.3))
    vp_act = vp_max * rh / 100
    tdew = temp - (100 - rh) / 5
    sh = 622 * vp_act / pressure
    wv = np.abs(2 + np.sin(day * 1.7) + rng.normal(0, 0.5, rows))
    table = np.stack(
        [
            pressure,
            temp,
            temp + 273.15 + (1000 - pressure) * 0.08,
            tdew,
            rh,
            vp_max,
            vp_act,
            vp_max - vp_act,
            sh,
            sh * 1.6,
            1290 - 4.6 * temp + (pressure - 989) * 1.2,
            wv,
            wv * 1.7 + np.abs(rng.normal(0, 0.3, rows)),
            (180 + 90 * np.sin(day / 3) + rng.normal(0, 20, rows)) % 360,
        ],
        axis=1,
    )
    start = np.datetime64("2009-01-01T00:10")
    stamps = start + np.arange(rows) * np.timedelta64(10, "m")
    dates = [str(s).replace("T", " ") for s in stamps]
    return dates, table


dates, df = jena_like_table()


def show_raw_visualization(data):
    fig, axes = plt.subplots(nrows=7, ncols=2, figsize=(15, 20), dpi=80, facecolor="w", edgecolor="k")
    for i, key in enumerate(feature_keys):
        ax = axes[i // 2, i % 2]
        ax.plot(data[:, i], color=colors[i % len(colors)])
        ax.set_title(f"{titles[i]} - {key}")
        ax.legend([titles[i]])
    plt.tight_layout()


show_raw_visualization(df)


def show_heatmap(data):
    plt.matshow(np.corrcoef(data, rowvar=False))
    plt.xticks(range(data.shape[1]), feature_keys, fontsize=14, rotation=90)
    plt.gca().xaxis.tick_bottom()
    plt.yticks(range(data.shape[1]), feature_keys, fontsize=14)
    colorbar = plt.colorbar()
    colorbar.ax.tick_params(labelsize=14)
    plt.title("Feature Correlation Heatmap", fontsize=14)
    plt.show()


show_heatmap(df)
plt.close("all")

split_fraction = 0.715
train_split = int(split_fraction * int(df.shape[0]))
step = 6  # one sample per hour
past = 720  # 5 days of rows
future = 72  # 12 hours ahead
learning_rate = 0.001
batch_size = 256
epochs = 2  # the example: 10


def normalize(data, train_split):
    mean = data[:train_split].mean(axis=0)
    std = data[:train_split].std(axis=0)
    return (data - mean) / std


selected = [0, 1, 5, 7, 8, 10, 11]
print("The selected parameters are:", ", ".join(titles[i] for i in selected))
features = df[:, selected]
features = normalize(features, train_split)

train_data = features[:train_split]
val_data = features[train_split:]

start = past + future  # the first label is 792 rows after the first input row
end = start + train_split
x_train = train_data[:, range(7)]
y_train = features[start:end][:, [1]]
sequence_length = int(past / step)

dataset_train = keras.preprocessing.timeseries_dataset_from_array(
    x_train, y_train, sequence_length=sequence_length, sampling_rate=step, batch_size=batch_size
)

x_end = len(val_data) - past - future  # the last 792 rows have no label
label_start = train_split + past + future
x_val = val_data[:x_end][:, range(7)]
y_val = features[label_start:][:, [1]]
dataset_val = keras.preprocessing.timeseries_dataset_from_array(
    x_val, y_val, sequence_length=sequence_length, sampling_rate=step, batch_size=batch_size
)

for batch in dataset_train.take(1):
    inputs, targets = batch
print("Input shape:", np.shape(inputs))
print("Target shape:", np.shape(targets))

inputs = keras.layers.Input(shape=(inputs.shape[1], inputs.shape[2]))
lstm_out = keras.layers.LSTM(32)(inputs)
outputs = keras.layers.Dense(1)(lstm_out)
model = keras.Model(inputs=inputs, outputs=outputs)
model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
model.summary()

path_checkpoint = "model_checkpoint.weights.h5"
es_callback = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=5)
modelckpt_callback = keras.callbacks.ModelCheckpoint(
    monitor="val_loss", filepath=path_checkpoint, verbose=1, save_weights_only=True, save_best_only=True
)
history = model.fit(
    dataset_train, epochs=epochs, validation_data=dataset_val, callbacks=[es_callback, modelckpt_callback]
)


def visualize_loss(history, title):
    loss = history.history["loss"]
    val_loss = history.history["val_loss"]
    epoch_axis = range(len(loss))
    plt.figure()
    plt.plot(epoch_axis, loss, "b", label="Training loss")
    plt.plot(epoch_axis, val_loss, "r", label="Validation loss")
    plt.title(title)
    plt.xlabel("Epochs")
    plt.ylabel("Loss")
    plt.legend()
    plt.show()


visualize_loss(history, "Training and Validation Loss")


def show_plot(plot_data, delta, title):
    labels = ["History", "True Future", "Model Prediction"]
    marker = [".-", "rx", "go"]
    time_steps = list(range(-(plot_data[0].shape[0]), 0))
    future_step = delta if delta else 0
    plt.title(title)
    for i, values in enumerate(plot_data):
        if i:
            plt.plot(future_step, values, marker[i], markersize=10, label=labels[i])
        else:
            plt.plot(time_steps, values.flatten(), marker[i], label=labels[i])
    plt.legend()
    plt.xlim([time_steps[0], (future_step + 5) * 2])
    plt.xlabel("Time-Step")
    plt.show()


predictions = []
for x, y in dataset_val.take(5):
    prediction = model.predict(x)[0]
    predictions.append(prediction)
    show_plot([np.asarray(x[0][:, 1]), np.asarray(y[0]), prediction], 12, "Single Step Prediction")
plt.close("all")
