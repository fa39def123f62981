"""The README's quick start runs as written (with one epoch instead of five)."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs(tmp_path, monkeypatch, capsys):
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("epochs=5", "epochs=1"), str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "Total params: 164,106" in out
    assert re.search(r"24/24 \[=+\] - \d+s \d+ms/step - loss: [\d.]+ - accuracy: [\d.]+ - val_loss", out)
    assert (tmp_path / "digits.keras").stat().st_size > 0
