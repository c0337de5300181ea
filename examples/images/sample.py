"""Write a held-out digit as a picture to send to the ``images`` model.

``python -m examples.images.sample digit.png [--digit 3] [--nth 0]``: a load_digits
digit the model never trained on, dark ink on white, 64x64. The file's suffix picks
the form: ``.png``, ``.jpg``/``.jpeg``, or ``.json`` for the request body
``{"inputs": ["<base64 PNG>"]}``.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

from examples.images.train import held_out_digit, render

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def write(out: Path, digit: int = 3, nth: int = 0) -> None:
    """Write the ``nth`` held-out ``digit`` to ``out`` in the form its suffix names."""
    suffix = out.suffix.lower()
    image = held_out_digit(digit, nth)
    if suffix == ".json":
        encoded = base64.b64encode(render(image)).decode("ascii")
        out.write_text(json.dumps({"inputs": [encoded]}), encoding="utf-8")
    elif suffix in FORMATS:
        out.write_bytes(render(image, fmt=FORMATS[suffix]))
    else:
        raise SystemExit(f"got '{out}': name a .png, .jpg or .json file")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="digit.png, digit.jpg or digit.json")
    parser.add_argument("--digit", type=int, default=3, choices=range(10))
    parser.add_argument("--nth", type=int, default=0, help="which held-out image of it")
    args = parser.parse_args(argv)
    write(args.out, args.digit, args.nth)
    print(f"wrote held-out digit {args.digit} to {args.out}")


if __name__ == "__main__":
    main()
