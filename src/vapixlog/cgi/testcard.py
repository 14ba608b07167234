"""The `serverreport_image.jpg` of `serverreport.cgi?mode=zip_with_image`: a test card.

A device puts a snapshot from its image sensor there. vapixlog has no sensor, so it makes a
640x360 baseline JPEG: colour bars, a grey ramp, and a panel with the hostname, the serial
number and the local time of the report; the JPEG comment says what it is. Pillow is imported
on first use, so serving without ever making a card does not load it.
"""

from __future__ import annotations

import datetime
import io

WIDTH, HEIGHT = 640, 360
COMMENT = b"vapixlog test card: this emulated device has no image sensor"
# 75% colour bars, left to right: grey, yellow, cyan, green, magenta, red, blue.
_BARS = (
    (191, 191, 191),
    (191, 191, 0),
    (0, 191, 191),
    (0, 191, 0),
    (191, 0, 191),
    (191, 0, 0),
    (0, 0, 191),
)


def make_jpeg(hostname: str, serial: str, now: datetime.datetime) -> bytes:
    """The test card as JPEG bytes (blocking: about 10 ms; run it in a worker thread)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (WIDTH, HEIGHT), (16, 16, 16))
    draw = ImageDraw.Draw(image)
    bars_bottom = HEIGHT * 58 // 100
    ramp_bottom = HEIGHT * 66 // 100
    for index, colour in enumerate(_BARS):
        left = index * WIDTH // len(_BARS)
        right = (index + 1) * WIDTH // len(_BARS) - 1
        draw.rectangle((left, 0, right, bars_bottom), fill=colour)
    for x in range(WIDTH):
        shade = x * 255 // (WIDTH - 1)
        draw.line((x, bars_bottom + 1, x, ramp_bottom), fill=(shade, shade, shade))

    big = ImageFont.load_default(size=26)
    small = ImageFont.load_default(size=16)
    white, grey = (240, 240, 240), (170, 170, 170)
    top = ramp_bottom + 14
    draw.text((20, top), hostname, fill=white, font=big)
    draw.text((20, top + 36), now.isoformat(timespec="seconds"), fill=white, font=big)
    draw.text(
        (20, top + 76),
        f"Serial No: {serial}   vapixlog test card: no image sensor",
        fill=grey,
        font=small,
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, comment=COMMENT)
    return out.getvalue()
