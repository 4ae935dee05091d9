"""Data: toy sets are seeded and shaped, digits are scaled as documented, ImageFolder fails clearly."""
import numpy as np
import pytest
import torch

from diffedu import data


@pytest.mark.parametrize("name", sorted(data.TOY_SETS))
def test_toy_sets_are_seeded_finite_and_shaped(name):
    a, b, c = data.toy_2d(name, 500, seed=0), data.toy_2d(name, 500, seed=0), data.toy_2d(name, 500, seed=1)
    assert a.shape == (500, 2) and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0.3 < a.std(0).min() and a.abs().max() < 5


def test_checkerboard_points_lie_on_black_squares():
    x = data.checkerboard(2000)
    assert ((torch.floor(x[:, 0]) + torch.floor(x[:, 1])) % 2 == 0).all()
    assert x.min() >= -2 and x.max() <= 2


def test_mixture_matches_the_gaussian_mixture():
    x = data.eight_gaussians(4000)
    r = x.norm(dim=1)
    assert abs(r.mean().item() - 2.0) < 0.02 and r.std().item() < 0.12


def test_unknown_toy_set_names_the_choices():
    with pytest.raises(ValueError, match="moons"):
        data.toy_2d("spiral")


def test_digits_native_scaling_and_labels():
    x, y = data.digits()
    assert x.shape == (1797, 1, 8, 8) and y.shape == (1797,) and y.dtype == torch.long
    levels = torch.unique((x + 1) * 8)  # v / 8 - 1 -> v
    assert torch.allclose(levels, levels.round()) and len(levels) == 17
    assert x.min() == -1 and x.max() == 1
    assert torch.bincount(y).tolist()[0] == 178


def test_digits_resized_is_bilinear_of_the_originals():
    x8, _ = data.digits(8)
    x16, _ = data.digits(16)
    assert x16.shape == (1797, 1, 16, 16) and x16.min() >= -1 and x16.max() <= 1
    ref = torch.nn.functional.interpolate(x8[:5], size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(x16[:5], ref)
    # 2x2 average pooling of the 16x16 version is a slightly blurred copy of the 8x8 original
    pooled = torch.nn.functional.avg_pool2d(x16, 2)
    assert torch.corrcoef(torch.stack([pooled.flatten(), x8.flatten()]))[0, 1] > 0.97


def _write(path, array, fmt):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def test_image_folder_recursive_resize_crop_rgb_and_grey(tmp_path):
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 10:30] = 255                       # a white centre square in a 40x20 black image
    _write(tmp_path / "a" / "wide.png", wide, "PNG")
    _write(tmp_path / "b" / "c" / "tall.JPG", np.full((60, 30, 3), 128, np.uint8), "JPEG")
    (tmp_path / "notes.txt").write_text("not an image")
    ds = data.ImageFolder(tmp_path, size=10)
    assert len(ds) == 2 and [p.name for p in ds.files] == ["wide.png", "tall.JPG"]
    x = ds[0]
    assert x.shape == (3, 10, 10) and x.dtype == torch.float32
    assert torch.allclose(x[:, :, 2:8], torch.ones(3, 10, 6), atol=0.05)   # the centre crop is the white square
    assert abs(ds[1].mean().item() - (128 / 127.5 - 1)) < 0.03
    grey = data.ImageFolder(tmp_path, size=10, channels=1)
    assert grey[0].shape == (1, 10, 10)
    assert ds.tensor().shape == (2, 3, 10, 10)


def test_image_folder_errors_name_the_path(tmp_path):
    with pytest.raises(ValueError, match="does not exist") as e:
        data.ImageFolder(tmp_path / "nope", 8)
    assert "nope" in str(e.value)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no PNG or JPEG") as e:
        data.ImageFolder(tmp_path / "empty", 8)
    assert "empty" in str(e.value)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    ds = data.ImageFolder(tmp_path / "bad", 8)
    with pytest.raises(ValueError, match="broken.png"):
        ds[0]
    with pytest.raises(ValueError, match="broken.png"):
        ds.tensor()
    with pytest.raises(ValueError, match="channels"):
        data.ImageFolder(tmp_path / "bad", 8, channels=2)


def test_image_folder_applies_the_exif_orientation(tmp_path):
    from PIL import Image
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = 255                       # left half white, as stored by a sideways phone
    exif = Image.Exif()
    exif[0x0112] = 6                           # "rotate 90 degrees clockwise to display"
    (tmp_path / "phone").mkdir()
    Image.fromarray(stored).save(tmp_path / "phone" / "photo.png", exif=exif)
    _write(tmp_path / "upright" / "photo.png", np.ascontiguousarray(np.rot90(stored, k=-1)), "PNG")
    phone, upright = data.ImageFolder(tmp_path / "phone", 10)[0], data.ImageFolder(tmp_path / "upright", 10)[0]
    assert torch.equal(phone, upright)
    assert phone[:, :3].mean() > 0.9 and phone[:, 7:].mean() < -0.9    # displayed: top half white


def test_image_folder_rescales_16_bit_grey(tmp_path):
    from PIL import Image
    levels = np.array([[0, 16384, 32768, 65535]], np.uint16).repeat(16, axis=0).repeat(4, axis=1)  # 16x16
    Image.fromarray(levels).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as im:
        assert im.mode.startswith("I")
    grey = data.ImageFolder(tmp_path, 16, channels=1)[0]
    expected = torch.from_numpy(levels.astype(np.float32) / 65535 * 2 - 1)
    assert torch.allclose(grey[0], expected, atol=1e-3)
    rgb = data.ImageFolder(tmp_path, 16)[0]
    assert rgb.shape == (3, 16, 16) and torch.allclose(rgb, grey.expand(3, -1, -1))
    small = data.ImageFolder(tmp_path, 4, channels=1)[0]
    assert small.min() >= -1 and small.max() <= 1 and abs(small.mean() - expected.mean()) < 0.02


def test_image_folder_composites_alpha_and_palettes_over_the_background(tmp_path):
    from PIL import Image
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255                         # red
    rgba[:, :4, 3] = 255                       # left half opaque, right half fully transparent
    _write(tmp_path / "rgba" / "a.png", rgba, "PNG")
    x = data.ImageFolder(tmp_path / "rgba", 8)[0]
    assert torch.allclose(x[:, :, :4], torch.tensor([1.0, -1, -1])[:, None, None].expand(3, 8, 4))
    assert torch.allclose(x[:, :, 4:], torch.ones(3, 8, 4))              # white background
    black = data.ImageFolder(tmp_path / "rgba", 8, background="black")[0]
    assert torch.allclose(black[:, :, 4:], -torch.ones(3, 8, 4))
    half = np.zeros((8, 8, 2), np.uint8)
    half[..., 1] = 128                         # black ink at half opacity, as "LA"
    (tmp_path / "la").mkdir()
    Image.fromarray(half).save(tmp_path / "la" / "la.png")
    assert abs(data.ImageFolder(tmp_path / "la", 8, channels=1)[0].mean().item() - (127 / 127.5 - 1)) < 0.02
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    pal.paste(1, (0, 0, 8, 4))                  # top half green, bottom half index 0 (transparent blue)
    (tmp_path / "pal").mkdir()
    pal.save(tmp_path / "pal" / "p.png", transparency=0)
    p = data.ImageFolder(tmp_path / "pal", 8)[0]
    assert torch.allclose(p[:, :4], torch.tensor([-1.0, 1, -1])[:, None, None].expand(3, 4, 8))
    assert torch.allclose(p[:, 4:], torch.ones(3, 4, 8))
    opaque = Image.new("P", (8, 8), 1)
    opaque.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    (tmp_path / "pal2").mkdir()
    opaque.save(tmp_path / "pal2" / "p.png")
    assert torch.allclose(data.ImageFolder(tmp_path / "pal2", 8)[0],
                          torch.tensor([-1.0, 1, -1])[:, None, None].expand(3, 8, 8))
    with pytest.raises(ValueError, match="background"):
        data.ImageFolder(tmp_path / "pal", 8, background="grey")


def test_upright_image_handles_pa_mode():
    from PIL import Image
    im = Image.new("PA", (2, 2))
    im.putpalette([255, 0, 0] + [0] * 765)
    out = data._upright_image(im, 3, 255)        # alpha 0 everywhere: all background
    assert out.mode == "RGB" and np.asarray(out).min() == 255


def test_a_decompression_bomb_is_a_value_error_naming_file_and_pixels(tmp_path, monkeypatch):
    from PIL import Image
    _write(tmp_path / "big.png", np.zeros((30, 30, 3), np.uint8), "PNG")
    ds = data.ImageFolder(tmp_path, 8)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600)          # 900 pixels: Pillow's warning, made an error
    with pytest.raises(ValueError, match="big.png.*900 pixels.*MAX_IMAGE_PIXELS"):
        ds[0]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)          # over twice the limit: Pillow's error
    with pytest.raises(ValueError, match="big.png.*900 pixels"):
        ds[0]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    assert ds[0].shape == (3, 8, 8)
