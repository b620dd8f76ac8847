"""
Make the simulator's sample clip: a short, playable H.264 MP4 and a PNG of its last frame.

The simulator serves these two files as the video and last frame of a task when it runs with
``clip=True`` (``make demo`` and ``make airflow`` do), so the first video a newcomer opens plays.
They are made once, here, and shipped as package data: serving them needs nothing beyond the
package, and their bytes (so their SHA-256) stay the same from run to run.

Run it only to change the clip (it needs the ``media`` extra: PyAV, which bundles FFmpeg with
libx264, and Pillow)::

    pip install -e ".[media]" && python scripts/make_simulator_clip.py

The drawing is plain arithmetic on arrays: a dusk sky, rain, a paper boat drifting on a street's
water, and a caption saying it is the simulator's clip. The encoder runs on one thread so that the
same inputs give the same bytes.
"""

from __future__ import annotations

import io
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
MEDIA = REPO / "airflow_provider_videogen" / "testing" / "media"
WIDTH, HEIGHT = 640, 360
FPS = 24
SECONDS = 5
CAPTION = "videogen simulator - sample clip (not a generated video)"


def frame(index: int) -> np.ndarray:
    """The RGB picture of frame ``index`` (HEIGHT x WIDTH x 3, uint8)."""
    t = index / FPS
    y = np.linspace(0.0, 1.0, HEIGHT)[:, None]
    x = np.linspace(0.0, 1.0, WIDTH)[None, :]
    sky = np.stack(
        [40 + 60 * y + 0 * x, 50 + 50 * y + 0 * x, 90 + 40 * (1 - y) + 0 * x],
        axis=-1,
    )
    water_line = int(HEIGHT * 0.62)
    ripple = 8 * np.sin(12 * x + 3 * t + 20 * y)
    water = np.stack([30 + ripple, 60 + ripple, 80 + ripple + 0 * y], axis=-1)
    picture = np.where(np.arange(HEIGHT)[:, None, None] < water_line, sky, water)
    image = Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    # Rain: streaks falling at a fixed speed, their places fixed by a seeded generator.
    drops = np.random.default_rng(7).uniform(0, 1, size=(140, 2))
    for dx, dy in drops:
        px = int(dx * WIDTH + 40 * t) % WIDTH
        py = int((dy * HEIGHT + 260 * t) % HEIGHT)
        draw.line([(px, py), (px - 3, py + 12)], fill=(170, 190, 210), width=1)
    # The boat drifts from left to right, bobbing on the water.
    bx = int(60 + (WIDTH - 180) * t / SECONDS)
    by = water_line - 4 + int(4 * np.sin(2.5 * t))
    draw.polygon([(bx, by), (bx + 90, by), (bx + 70, by + 22), (bx + 18, by + 22)], fill=(235, 235, 225))
    draw.polygon([(bx + 30, by), (bx + 50, by - 45), (bx + 62, by)], fill=(250, 250, 240))
    draw.rectangle([(0, HEIGHT - 26), (WIDTH, HEIGHT)], fill=(0, 0, 0))
    draw.text((10, HEIGHT - 20), CAPTION, fill=(255, 255, 255))
    return np.asarray(image)


def encode(path: Path) -> bytes:
    """Write the clip to ``path`` and return its bytes (H.264, yuv420p, 24 fps, moov first: plays while loading)."""
    # A file, not a buffer: +faststart moves the index to the front by reading the file back.
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.codec_context.thread_count = 1
        stream.options = {"crf": "30", "preset": "slow", "threads": "1"}
        for index in range(FPS * SECONDS):
            video_frame = av.VideoFrame.from_ndarray(frame(index), format="rgb24")
            video_frame.pts = index
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    return path.read_bytes()


def last_frame_png(clip: bytes) -> bytes:
    """The clip's last frame as decoded by a player, as PNG bytes."""
    with av.open(io.BytesIO(clip)) as container:
        last = None
        for decoded in container.decode(video=0):
            last = decoded
    if last is None:
        raise SystemExit("The encoded clip has no frame: nothing to take the last frame from.")
    out = io.BytesIO()
    last.to_image().save(out, format="PNG", optimize=True)
    return out.getvalue()


def main() -> int:
    MEDIA.mkdir(parents=True, exist_ok=True)
    clip = encode(MEDIA / "clip.mp4")
    png = last_frame_png(clip)
    (MEDIA / "clip.png").write_bytes(png)
    print(f"clip.mp4: {len(clip):,} bytes; clip.png: {len(png):,} bytes (in {MEDIA.relative_to(REPO)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
