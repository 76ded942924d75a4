"""The command line with the real codecs (shipped UQDM and DiffC models) on tiny images."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from chansim.cli import common  # noqa: E402
from chansim.codecs import container  # noqa: E402
from chansim.metrics import psnr  # noqa: E402


def photo(h=24, w=32, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 6 + 20, y * 7 + 30, 200 - (x + y) * 3], axis=-1) + rng.integers(0, 12, (h, w, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def png(tmp_path, img, name="in.png"):
    Image.fromarray(img).save(tmp_path / name)
    return tmp_path / name


def read_png(path):
    return np.asarray(Image.open(path))


def test_uqdm_round_trip_lossless_and_previews(tmp_path, cli_run):
    img = photo()
    src = png(tmp_path, img)
    codec = common.load_codec("uqdm")
    status, out, err = cli_run("compress", src, tmp_path / "a.chsm", "--quality", "2", "--check")
    assert status == 0, err
    data = (tmp_path / "a.chsm").read_bytes()
    assert data == codec.compress(img, quality=2)  # the CLI adds nothing to the codec's bytes
    assert f"{len(data):,} bytes" in out and f"PSNR {psnr(img, codec.decompress(data)):.2f} dB" in out
    assert cli_run("decompress", tmp_path / "a.chsm", tmp_path / "a.png")[0] == 0
    assert np.array_equal(read_png(tmp_path / "a.png"), codec.decompress(data))
    # The preview of the first section is what the truncated file decodes to.
    assert cli_run("decompress", tmp_path / "a.chsm", tmp_path / "p.png", "--preview-steps", "1",
                   "--reconstruction", "ancestral")[0] == 0
    expected = codec.decompress(container.truncate(data, 1), reconstruction="ancestral")
    assert np.array_equal(read_png(tmp_path / "p.png"), expected)
    status, out, err = cli_run("compress", src, tmp_path / "l.chsm", "--quality", "lossless")
    assert status == 0, err
    assert cli_run("decompress", tmp_path / "l.chsm", tmp_path / "l.png")[0] == 0
    assert np.array_equal(read_png(tmp_path / "l.png"), img)


def test_diffc_round_trip_and_mismatched_model(tmp_path, cli_run):
    img = photo(16, 20, seed=1)
    src = png(tmp_path, img)
    codec = common.load_codec("diffc")
    status, out, err = cli_run("compress", src, tmp_path / "d.chsm", "--codec", "diffc", "--quality", "2")
    assert status == 0, err
    data = (tmp_path / "d.chsm").read_bytes()
    status, out, err = cli_run("decompress", tmp_path / "d.chsm", tmp_path / "d.png", "--reconstruction", "mmse")
    assert status == 0, err
    assert np.array_equal(read_png(tmp_path / "d.png"), codec.decompress(data, reconstruction="mmse"))
    # The same file claiming another model: a clear one-line refusal, not a wrong image.
    c = container.unpack(data)
    c.model_tag = bytes(8)
    (tmp_path / "other.chsm").write_bytes(c.pack())
    status, out, err = cli_run("decompress", tmp_path / "other.chsm", tmp_path / "o.png")
    assert status == 2 and "model mismatch" in err and len(err.strip().splitlines()) == 1
    status, out, err = cli_run("decompress", tmp_path / "d.chsm", tmp_path / "o.png", "--reconstruction", "nope")
    assert status == 2 and "reconstruction" in err


def test_diffc_lam_reaches_the_interp_reconstruction(tmp_path, cli_run):
    """--lam is the λ of X̂_λ = λ X̂_realistic + (1 − λ) X̂_MMSE: at λ = 0 "interp" is exactly the MMSE
    image (the default λ, 0.5, mixes in the sample), in compress --check and in decompress."""
    img = photo(16, 16, seed=2)
    src = png(tmp_path, img)
    codec = common.load_codec("diffc")
    status, out, err = cli_run("compress", src, tmp_path / "d.chsm", "--codec", "diffc", "--quality", "1", "--check",
                               "--reconstruction", "interp", "--lam", "0")
    assert status == 0, err
    data = (tmp_path / "d.chsm").read_bytes()
    mmse = codec.decompress(data, reconstruction="mmse")
    assert f"PSNR {psnr(img, mmse):.2f} dB" in out
    status, out, err = cli_run("decompress", tmp_path / "d.chsm", tmp_path / "d.png", "--reconstruction", "interp",
                               "--lam", "0")
    assert status == 0, err
    assert np.array_equal(read_png(tmp_path / "d.png"), mmse)
    # Refused from the arguments, before the file is read: --lam weighs "interp" only.
    status, out, err = cli_run("decompress", tmp_path / "d.chsm", tmp_path / "e.png", "--reconstruction", "flow",
                               "--lam", "0.3")
    assert status == 2 and "--lam is the λ of --reconstruction interp" in err and not (tmp_path / "e.png").exists()


def test_eval_uqdm_on_a_local_dask_cluster_with_two_workers(tmp_path, cli_run):
    d = tmp_path / "imgs"
    d.mkdir()
    imgs = {f"im{i}.png": photo(16 + 8 * i, 24, seed=i) for i in range(2)}
    for name, img in imgs.items():
        png(d, img, name)
    out = tmp_path / "out"
    status, stdout, err = cli_run("eval", d, "--codec", "uqdm", "--out", out, "--qualities", "1,3",
                                  "--reconstruction", "mmse,ancestral", "--baselines", "jpeg",
                                  "--scheduler", "processes", "--workers", "2", "--crops", "1")
    assert status == 0, err
    doc = json.loads((out / "results.json").read_text())
    assert doc["meta"]["workers"] == 2
    codec = common.load_codec("uqdm")
    assert doc["meta"]["codecs"][0]["model_id"] == codec.model_id
    rows = [r for r in doc["images"] if r["codec"] == "uqdm"]
    assert len(rows) == 2 * 2 * 2  # images × qualities × reconstructions
    for r in rows:  # every number recomputed here, from the codec in this process
        img = imgs[r["image"]]
        data = codec.compress(img, quality=int(r["quality"]))
        assert r["bytes"] == len(data)
        assert r["psnr"] == pytest.approx(psnr(img, codec.decompress(data, reconstruction=r["reconstruction"])))
    summary = {(e["method"], e["quality"]): e for e in doc["summary"]}
    assert summary[("uqdm (mmse)", "3")]["bpp"] == pytest.approx(
        np.mean([r["bpp"] for r in rows if r["quality"] == "3" and r["reconstruction"] == "mmse"]))
    assert "JPEG" in {e["method"] for e in doc["summary"]}
    assert (out / "rd_psnr.png").exists() and (out / "crops" / "im0.png").exists()


def test_uqdm_pipe_stdin_to_stdout(tmp_path):
    """``compress - - | decompress - -`` with a shipped codec, as two processes joined by a pipe."""
    import io
    import subprocess
    import sys

    img = photo()
    src = png(tmp_path, img)
    cmd = [sys.executable, "-m", "chansim"]
    with open(src, "rb") as f:
        enc = subprocess.Popen(cmd + ["compress", "-", "-", "--codec", "uqdm", "--quality", "1"], stdin=f,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dec = subprocess.Popen(cmd + ["decompress", "-", "-"], stdin=enc.stdout, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    enc.stdout.close()  # the pipe now belongs to the decoder
    out, dec_err = dec.communicate(timeout=600)
    enc_err = enc.communicate(timeout=600)[1]
    assert enc.returncode == 0 and dec.returncode == 0, (enc_err, dec_err)
    assert b"stdin (32\xc3\x9724) -> stdout" in enc_err and b"stdin -> stdout (32\xc3\x9724" in dec_err
    back = np.asarray(Image.open(io.BytesIO(out)))
    codec = common.load_codec("uqdm")
    expected = codec.decompress(codec.compress(img, 1))  # the default seed: derived from image and model
    assert np.array_equal(back, expected)


def test_uqdm_grayscale_comes_back_gray(tmp_path, cli_run):
    y, x = np.mgrid[0:24, 0:32]
    g = np.clip(x * 6 + y * 3 + 20, 0, 255).astype(np.uint8)
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    assert cli_run("compress", tmp_path / "g.png", tmp_path / "g.chsm", "--codec", "uqdm", "--quality", "1")[0] == 0
    assert container.unpack((tmp_path / "g.chsm").read_bytes()).flags == container.FLAG_GRAY
    assert cli_run("decompress", tmp_path / "g.chsm", tmp_path / "g1.png")[0] == 0
    assert cli_run("decompress", tmp_path / "g.chsm", tmp_path / "g3.png", "--rgb")[0] == 0
    gray, rgb = read_png(tmp_path / "g1.png"), read_png(tmp_path / "g3.png").astype(int)
    assert gray.shape == g.shape  # one channel
    # The codec reconstructs R, G, B apart at this rate (the tint issue 17 reported); the gray
    # output is their rounded mean.
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() > 0
    assert np.array_equal(gray, (rgb.sum(axis=2) + 1) // 3)
