"""Damaged files fail clearly: a flipped bit, an implausible or mismatched config, a failed write.

Every error is a ValueError (or, for a failed write, an OSError) whose message names the file.
"""
import errno
import json
import os
import re
import subprocess
import sys
import time
import zipfile

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import diffedu
from diffedu import assets, checkpoint
from diffedu.checkpoint import (MAX_PARAMETERS, export_model, load_checkpoint, load_classifier_file, load_model,
                                remove_stale_temps, save_checkpoint, save_classifier)
from diffedu.models import DigitClassifier


def tiny_mlp(**kw):
    torch.manual_seed(0)
    return diffedu.MLP(**dict(dict(hidden=32, depth=1, emb_dim=16), **kw))


def write_checkpoint(path, model=None):
    model = model or tiny_mlp()
    save_checkpoint(path, model=model, ema=model, optimizer=torch.optim.AdamW(model.parameters()), step=3,
                    objective="eps", betas=diffedu.linear_betas(1000), meta={"shape": [2]})
    return path


def temps(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def flip(path, offset, bit=0x10):
    data = bytearray(path.read_bytes())
    data[offset] ^= bit
    path.write_bytes(bytes(data))


def zip_member_data(path, name_part):
    """(member name, offset of its first data byte, size) of the largest zip member containing name_part."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if name_part in i.filename), key=lambda i: i.file_size)
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(f.read(2), "little") for _ in range(2))
    return info.filename, info.header_offset + 30 + name_len + extra_len, info.file_size


def payload_start(path):
    with open(path, "rb") as f:
        return 8 + int.from_bytes(f.read(8), "little")


def rewrite_export(src, dst, **metadata):
    """A copy of an export with some metadata entries replaced (and no hashes, like the shipped assets)."""
    with safe_open(str(src), "pt") as f:
        md = {k: v for k, v in (f.metadata() or {}).items() if k not in ("sha256", "metadata_sha256")}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    md.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()})
    save_file(tensors, str(dst), metadata=md)
    return dst


@pytest.fixture
def export(tmp_path):
    return export_model(write_checkpoint(tmp_path / "ckpt.pt"), tmp_path / "model.safetensors")


# ---------------------------------------------------------------------------------------------
# 1. Failed writes leave no temporary and the previous file intact; stale temporaries are removed.


def _disk_full_after_half(*args, **kwargs):
    """torch.save(obj, f) / save_file(tensors, filename, metadata): write some bytes, then ENOSPC."""
    target = args[1]
    if isinstance(target, (str, os.PathLike)):
        with open(target, "wb") as f:
            f.write(b"half a file")
    else:
        target.write(b"half a file")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_checkpoint_write_that_fails_leaves_no_temporary(tmp_path, monkeypatch):
    path = write_checkpoint(tmp_path / "ckpt.pt")
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", _disk_full_after_half)
    with pytest.raises(OSError, match="ckpt.pt.*No space left") as e:
        write_checkpoint(path)
    assert e.value.errno == errno.ENOSPC
    assert temps(tmp_path) == [] and path.read_bytes() == before
    monkeypatch.undo()
    load_checkpoint(path)
    with monkeypatch.context() as m:      # no previous file: nothing at all is left behind
        m.setattr(torch, "save", _disk_full_after_half)
        with pytest.raises(OSError, match="fresh.pt"):
            write_checkpoint(tmp_path / "fresh.pt")
    assert temps(tmp_path) == [] and not (tmp_path / "fresh.pt").exists()


def test_an_export_or_classifier_write_that_fails_leaves_no_temporary(tmp_path, monkeypatch, export):
    before = export.read_bytes()
    monkeypatch.setattr(checkpoint, "save_file", _disk_full_after_half)
    with pytest.raises(OSError, match="model.safetensors.*No space left"):
        export_model(tmp_path / "ckpt.pt", export)
    with pytest.raises(OSError, match="clf.safetensors"):
        save_classifier(DigitClassifier(image_size=8, width=8), tmp_path / "clf.safetensors")
    assert temps(tmp_path) == [] and export.read_bytes() == before and not (tmp_path / "clf.safetensors").exists()
    monkeypatch.undo()
    load_model(export)


def test_an_interrupted_write_removes_its_temporary(tmp_path, monkeypatch):
    def interrupted(obj, f):
        f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(tmp_path / "ckpt.pt")
    assert temps(tmp_path) == []


def test_remove_stale_temps_removes_only_those_of_dead_writers(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(dead.stdout)
    for name in (f".ckpt.pt.tmp-{dead_pid}", f".model.safetensors.tmp-{dead_pid}", f".ckpt.pt.tmp-{os.getpid()}",
                 "ckpt.pt", ".ckpt.pt.tmp-notapid", "notes.tmp-1"):
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == [f".ckpt.pt.tmp-{dead_pid}", f".model.safetensors.tmp-{dead_pid}"]
    assert all(p.parent == tmp_path for p in removed)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".ckpt.pt.tmp-{os.getpid()}", "ckpt.pt", ".ckpt.pt.tmp-notapid", "notes.tmp-1"])
    assert remove_stale_temps(tmp_path) == [] and remove_stale_temps(tmp_path / "absent") == []


def test_a_sigkilled_writer_leaves_a_temporary_that_remove_stale_temps_finds(tmp_path):
    """The writer dies between writing its temporary and publishing it (a SIGKILL mid-write)."""
    code = ("import os, sys, signal, torch; from diffedu import checkpoint as c; m = torch.nn.Linear(1, 1)\n"
            "c.publish = lambda tmp, path: os.kill(os.getpid(), signal.SIGKILL)\n"
            "m.config = {'kind': 'mlp'}\n"
            f"c.save_checkpoint({str(tmp_path / 'ckpt.pt')!r}, model=m, ema=m, optimizer=torch.optim.SGD(m.parameters(), 0.1),"
            " step=1, objective='eps')")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.wait(timeout=60) == -9
    assert temps(tmp_path) == [f".ckpt.pt.tmp-{proc.pid}"] and not (tmp_path / "ckpt.pt").exists()
    assert [p.name for p in remove_stale_temps(tmp_path)] == [f".ckpt.pt.tmp-{proc.pid}"] and temps(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# 2. A flipped bit is found: zip CRCs in checkpoints, SHA-256s in .safetensors files.


def test_a_flipped_bit_in_a_checkpoint_is_a_value_error_naming_file_and_member(tmp_path):
    path = write_checkpoint(tmp_path / "ckpt.pt")
    member, start, size = zip_member_data(path, "/data/")
    flip(path, start + size // 2)
    with pytest.raises(ValueError, match=f"ckpt.pt.*corrupt.*{re.escape(member)}.*CRC"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="ckpt.pt.*CRC"):
        load_model(path)


def test_a_flipped_bit_in_the_pickle_of_a_checkpoint_is_found_too(tmp_path):
    path = write_checkpoint(tmp_path / "ckpt.pt")
    member, start, size = zip_member_data(path, "data.pkl")
    flip(path, start + size // 2, bit=0x01)
    with pytest.raises(ValueError, match=f"ckpt.pt.*{re.escape(member)}"):
        load_checkpoint(path)


def test_an_export_records_its_hashes_and_a_flipped_byte_is_refused(tmp_path, export):
    with safe_open(str(export), "pt") as f:
        md = f.metadata()
    assert re.fullmatch("[0-9a-f]{64}", md["sha256"]) and re.fullmatch("[0-9a-f]{64}", md["metadata_sha256"])
    assert md["sha256"] == checkpoint._payload_sha256(export)
    start, end = payload_start(export), export.stat().st_size
    flip(export, (start + end) // 2)
    with pytest.raises(ValueError, match="model.safetensors.*corrupt.*SHA-256"):
        load_model(export)


def test_a_flipped_byte_in_an_exports_metadata_is_refused(tmp_path, export):
    data = export.read_bytes()
    i = data.index(b'"eps"', 0, payload_start(export))
    export.write_bytes(data[:i + 2] + b"q" + data[i + 3:])     # "eps" -> "eqs": one bit
    with pytest.raises(ValueError, match="model.safetensors.*metadata.*SHA-256"):
        load_model(export)


def test_a_flipped_byte_in_a_classifier_file_is_refused(tmp_path):
    path = tmp_path / "clf.safetensors"
    save_classifier(DigitClassifier(image_size=8, width=8), path, meta={"accuracy": 0.9})
    assert load_classifier_file(path).meta == {"accuracy": 0.9}
    flip(path, (payload_start(path) + path.stat().st_size) // 2)
    with pytest.raises(ValueError, match="clf.safetensors.*corrupt.*SHA-256"):
        load_classifier_file(path)


def test_files_without_hashes_still_load(tmp_path, export):
    """The shipped assets predate the hashes (the manifest hashes them)."""
    for name in ("digits_unet.safetensors", "mixture_mlp.safetensors", "digits_classifier.safetensors"):
        with safe_open(str(assets.ASSETS / name), "pt") as f:
            assert "sha256" not in f.metadata()
    assets.load_mlp(), assets.load_classifier()
    load_model(rewrite_export(export, tmp_path / "plain.safetensors"))


# ---------------------------------------------------------------------------------------------
# 3. Configs are checked, and shapes compared, before anything large is allocated.


def test_a_huge_config_is_refused_before_any_allocation(tmp_path, export):
    huge = rewrite_export(export, tmp_path / "huge.safetensors",
                          model_config=dict(kind="mlp", dim=2, hidden=100000, depth=50, emb_dim=16))
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=f"huge.safetensors.*parameters, more than the {MAX_PARAMETERS:,}"):
        load_model(huge)
    assert time.perf_counter() - t0 < 5
    path = tmp_path / "huge.pt"
    model = tiny_mlp()
    model.config = dict(model.config, hidden=100000, depth=50)
    write_checkpoint(path, model)
    with pytest.raises(ValueError, match="huge.pt.*parameters"):
        load_model(path)


def test_mismatched_weights_name_the_file_and_the_first_key(tmp_path, export):
    wider = rewrite_export(export, tmp_path / "wider.safetensors", model_config=dict(tiny_mlp().config, hidden=33))
    with pytest.raises(ValueError, match=r"wider.safetensors.*'inp.weight' has shape \(32, 2\).*needs \(33, 2\)"):
        load_model(wider)
    deeper = rewrite_export(export, tmp_path / "deeper.safetensors", model_config=dict(tiny_mlp().config, depth=2))
    with pytest.raises(ValueError, match="deeper.safetensors.*'blocks.1.lin1.weight' is missing"):
        load_model(deeper)
    unet = rewrite_export(export, tmp_path / "unet.safetensors",
                          model_config=dict(kind="unet", base_channels=8, channel_mults=[1]))
    with pytest.raises(ValueError, match="unet.safetensors.*weights do not fit"):
        load_model(unet)


@pytest.mark.parametrize("bad,match", [
    (dict(hidden=0), "hidden must be in >= 1, got 0"),
    (dict(hidden=-5), "hidden must be in >= 1"),
    (dict(depth=10**6), "depth must be in 1..1000"),
    (dict(emb_dim=15), "emb_dim must be even"),
    (dict(hidden=32.5), "hidden must be an integer"),
    (dict(kind="transformer"), "kind"),
    (dict(widht=3), "cannot build"),
])
def test_implausible_mlp_configs_name_the_file_and_the_value(tmp_path, export, bad, match):
    path = rewrite_export(export, tmp_path / "bad.safetensors", model_config=dict(tiny_mlp().config, **bad))
    with pytest.raises(ValueError, match=f"bad.safetensors.*{re.escape(match)}"):
        load_model(path)


@pytest.mark.parametrize("bad,match", [
    (dict(channel_mults="12"), "channel_mults must be a list"),
    (dict(channel_mults=[]), "channel_mults must have 1..8 entries"),
    (dict(channel_mults=[1, 0]), "channel_mults entry must be in >= 1"),
    (dict(dropout=1.5), "dropout must be in [0, 1)"),
    (dict(attention="yes"), "attention must be True or False"),
    (dict(num_res_blocks=10**5), "num_res_blocks must be in 1..64"),
    (dict(base_channels=-8), "base_channels must be in >= 8"),
])
def test_implausible_unet_configs_name_the_file_and_the_value(tmp_path, export, bad, match):
    config = dict(diffedu.UNet(base_channels=8, channel_mults=(1,)).config, **bad)
    path = rewrite_export(export, tmp_path / "bad.safetensors", model_config=config)
    with pytest.raises(ValueError, match=f"bad.safetensors.*{re.escape(match)}"):
        load_model(path)


def test_malformed_metadata_names_the_file_and_the_entry(tmp_path, export):
    path = rewrite_export(export, tmp_path / "m.safetensors", model_config="{not json")
    with pytest.raises(ValueError, match="m.safetensors.*'model_config' is malformed"):
        load_model(path)
    path = rewrite_export(export, tmp_path / "s.safetensors", sigma_data="half")
    with pytest.raises(ValueError, match="s.safetensors.*'sigma_data' is malformed"):
        load_model(path)
    clf = tmp_path / "clf.safetensors"
    save_classifier(DigitClassifier(image_size=8, width=8), clf)
    bad = rewrite_export(clf, tmp_path / "clf_bad.safetensors", model_config=dict(kind="classifier", width=0))
    with pytest.raises(ValueError, match="clf_bad.safetensors.*width must be in >= 1"):
        load_classifier_file(bad)
    wrong = rewrite_export(clf, tmp_path / "clf_mlp.safetensors", model_config=tiny_mlp().config)
    with pytest.raises(ValueError, match="clf_mlp.safetensors.*'classifier'"):
        load_classifier_file(wrong)


def test_a_good_export_loads_on_the_requested_device_with_the_same_weights(tmp_path, export):
    t = load_model(export)
    ref = load_checkpoint(tmp_path / "ckpt.pt")["ema"]
    assert all(torch.equal(v, ref[k]) for k, v in t.model.state_dict().items())
    assert not any(p.is_meta for p in t.model.parameters()) and not t.model.training
    half = load_model(export_model(tmp_path / "ckpt.pt", tmp_path / "half.safetensors", "float16"))
    assert all(p.dtype == torch.float32 for p in half.model.parameters())
