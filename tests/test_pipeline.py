import cv2
import numpy as np
import pytest
import skimage.data
import torch

import fhsdk
from fhsdk import GalleryError, ImageReadError, InvalidInputError, NoFaceError, VideoSourceError
from fhsdk.gallery import Gallery


@pytest.fixture(scope="module")
def pipe():
    return fhsdk.Pipeline(hallucinator="bicubic")


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()[:, :, ::-1].copy()


def _scene(face_image, side, position=(100, 50), shape=(240, 320)):
    """A grey frame with the face image shrunk to `side` px pasted in."""
    frame = np.full(shape + (3,), 90, np.uint8)
    small = cv2.resize(face_image, (side, side), interpolation=cv2.INTER_AREA)
    y, x = position
    frame[y : y + side, x : x + side] = small
    return frame


def test_public_contract_stages(pipe, astronaut):
    faces = pipe.detect(astronaut)
    assert len(faces) == 1 and faces[0].score > 0.9
    crops = pipe.align(astronaut, faces, size=16)
    assert crops.shape == (1, 16, 16, 3) and crops.dtype == np.uint8
    sr = pipe.hallucinate(crops)
    assert sr.shape == (1, 128, 128, 3) and sr.dtype == np.uint8
    emb = pipe.embed(sr)
    assert emb.shape == (1, 128) and emb.dtype == np.float32
    assert np.linalg.norm(emb, axis=1) == pytest.approx(1.0, abs=1e-5)


def test_enroll_then_identify_large_and_tiny_face(astronaut):
    pipe = fhsdk.Pipeline(hallucinator="bicubic", gate_px=48)
    pipe.enroll("eileen", [astronaut])
    result = pipe.process(astronaut)
    assert result.faces[0].identity == "eileen" and not result.faces[0].hallucinated
    # 128 px image, a 29 px face region: hallucinated (< gate) and named on its own evidence (at 64 px it
    # scores 0.91 < 0.92 and was named only because fusion carried the large face's name across the cut)
    tiny = pipe.process(_scene(astronaut, 128))
    assert len(tiny.faces) == 1
    face = tiny.faces[0]
    assert face.hallucinated and face.size_px < 48
    assert face.identity == "eileen"
    assert face.restored.shape == (128, 128, 3)  # process() keeps the hallucinated face for drawing


def test_stream_copies_restored_faces_only_for_drawing(astronaut):
    pipe = fhsdk.Pipeline(hallucinator="bicubic", gate_px=48)
    frame = _scene(astronaut, 64)
    plain = next(iter(pipe.stream([frame])))
    drawn = next(iter(pipe.stream([frame], keep_images=True)))
    assert plain.faces[0].hallucinated and plain.faces[0].restored is None and plain.image is None
    assert drawn.faces[0].hallucinated and drawn.faces[0].restored.shape == (128, 128, 3)
    np.testing.assert_array_equal(drawn.image, frame)


def test_unknown_face_is_not_named(astronaut):
    pipe = fhsdk.Pipeline(hallucinator="bicubic")
    pipe.gallery.add("someone_else", np.eye(128, dtype=np.float32)[0])
    result = pipe.process(astronaut)
    assert result.faces[0].identity is None


def test_enroll_errors(pipe, tmp_path):
    with pytest.raises(NoFaceError, match="no face"):
        pipe.enroll("nobody", [np.full((120, 120, 3), 128, np.uint8)])
    with pytest.raises(ImageReadError):
        pipe.enroll("missing", [tmp_path / "absent.jpg"])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not a jpeg")
    with pytest.raises(ImageReadError):
        pipe.enroll("garbage", [garbage])


@pytest.mark.parametrize("frame", [np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 5), np.uint8), [[1, 2]]])
def test_process_rejects_bad_frames(pipe, frame):
    with pytest.raises(InvalidInputError):
        pipe.process(frame)


def test_stream_over_frames_and_video_file(pipe, astronaut, tmp_path):
    frames = [_scene(astronaut, 80, (40 + 5 * i, 60 + 10 * i)) for i in range(6)]
    results = list(pipe.stream(iter(frames), batch_frames=4))
    assert [r.index for r in results] == list(range(6))
    assert all(len(r.faces) == 1 for r in results)
    batched = [f.embedding for r in results for f in r.faces]
    single = [pipe.process(frames[i]).faces[0].embedding for i in (0, 5)]
    np.testing.assert_allclose(batched[0], single[0], atol=1e-5)
    np.testing.assert_allclose(batched[5], single[1], atol=1e-5)

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for frame in frames:
        writer.write(frame)
    writer.release()
    from_file = list(pipe.stream(str(path)))
    assert len(from_file) == 6 and from_file[3].timestamp == pytest.approx(0.3, abs=0.05)


def test_stream_errors(pipe, tmp_path):
    with pytest.raises(VideoSourceError):
        list(pipe.stream(tmp_path / "none.mp4"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(VideoSourceError):
        list(pipe.stream(str(broken)))
    with pytest.raises(VideoSourceError):
        list(pipe.stream(3.5))


def test_gallery_round_trip_and_refusals(tmp_path):
    rng = np.random.default_rng(0)
    gallery = Gallery(128, "abc")
    gallery.add("a", rng.normal(size=(3, 128)), average=True)
    gallery.add("b", rng.normal(size=(2, 128)))
    assert len(gallery) == 3 and gallery.identities == ["a", "b"]
    path = gallery.save(tmp_path / "g.npz")
    loaded = Gallery.load(path, recognizer_fingerprint="abc")
    assert loaded.names == gallery.names
    np.testing.assert_array_equal(loaded.embeddings, gallery.embeddings)
    query = gallery.embeddings[1:2]
    assert loaded.match(query, 0.5)[0].identity == "b"
    with pytest.raises(GalleryError, match="another recogniser"):
        Gallery.load(path, recognizer_fingerprint="xyz")
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(GalleryError):
        Gallery.load(path)
    with pytest.raises(InvalidInputError):
        gallery.add("nan", np.full(128, np.nan))
    assert Gallery(128).match(query, 0.5)[0].identity is None


def test_pipeline_refuses_foreign_gallery(tmp_path):
    other = Gallery(128, "not-this-recogniser")
    other.add("x", np.ones(128))
    path = other.save(tmp_path / "other.npz")
    with pytest.raises(GalleryError):
        fhsdk.Pipeline(hallucinator="bicubic", gallery=path)


def test_onnxruntime_backend_matches_torch(astronaut):
    torch_pipe = fhsdk.Pipeline(hallucinator="bicubic")
    ort_pipe = fhsdk.Pipeline(hallucinator="bicubic", backend="onnxruntime")
    assert ort_pipe.detector.backend == "onnxruntime"
    frame = _scene(astronaut, 64)
    for image in (astronaut, frame):
        a, b = torch_pipe.process(image).faces, ort_pipe.process(image).faces
        assert len(a) == len(b) == 1
        np.testing.assert_allclose(a[0].landmarks, b[0].landmarks, atol=0.01)
        assert float(a[0].embedding @ b[0].embedding) > 0.99999


def test_unknown_backend_is_refused():
    with pytest.raises(InvalidInputError, match="unknown backend"):
        fhsdk.Pipeline(backend="tflite")


def test_pipeline_from_config(tmp_path):
    config = tmp_path / "pipeline.yaml"
    config.write_text("hallucinator: bicubic\ngate_px: 20\nthreshold: 0.9\ntrack: false\n")
    pipe = fhsdk.Pipeline.from_config(config)
    assert pipe.gate_px == 20 and pipe.threshold == 0.9 and pipe.tracker is None
    config.write_text("hallucinator: bicubic\ngate: 20\n")
    with pytest.raises(fhsdk.ConfigError, match="unknown keys gate"):
        fhsdk.Pipeline.from_config(config)
    config.write_text("[unclosed")
    with pytest.raises(fhsdk.ConfigError):
        fhsdk.Pipeline.from_config(config)


@pytest.mark.parametrize("hallucinator", ["bicubic", "default"])
def test_tensor_path_between_hallucinator_and_embedder_equals_the_array_contract(astronaut, hallucinator):
    pipe = fhsdk.Pipeline(hallucinator=hallucinator)
    faces = pipe.detect(astronaut)
    crops = np.concatenate([pipe.align(astronaut, faces, 14)] * 3)
    restored = pipe.hallucinator.hallucinate_tensor(crops)
    assert restored.shape == (3, 3, 128, 128) and restored.dtype == torch.float32
    np.testing.assert_array_equal(fhsdk.hallucinate.tensor_to_bgr_uint8(restored), pipe.hallucinate(crops))
    np.testing.assert_array_equal(pipe.embedder.embed_tensor(restored), pipe.embed(pipe.hallucinate(crops)))


def test_flip_averages_each_face_with_its_mirror_image(astronaut):
    plain = fhsdk.Pipeline(hallucinator="bicubic", gate_px=48, track=False)
    flipped = fhsdk.Pipeline(hallucinator="bicubic", gate_px=48, track=False, flip=True)

    def unit(v):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    # A large face goes straight to the recogniser: the flip is a mirrored warp of the frame.
    face = flipped.process(astronaut).faces[0]
    chip = flipped.align(astronaut, [face], size=150)
    expected = unit(flipped.embed(chip) + flipped.embed(np.ascontiguousarray(chip[:, :, ::-1])))[0]
    assert not face.hallucinated and float(face.embedding @ expected) > 0.9999
    assert float(face.embedding @ plain.process(astronaut).faces[0].embedding) < 0.9999  # the option does something
    # A tiny face is hallucinated first; the restored face and its mirror are embedded by the recogniser(s)
    # for hallucinated faces (by default the original and the adapted one, their mean direction).
    scene = _scene(astronaut, 64)
    tiny = flipped.process(scene).faces[0]
    lr = flipped.align(scene, [tiny], size=int(round(tiny.size_px)))
    restored = flipped.hallucinate(lr)
    embed = flipped.lr_embedder
    expected = unit(embed(restored) + embed(np.ascontiguousarray(restored[:, :, ::-1])))[0]
    assert tiny.hallucinated and float(tiny.embedding @ expected) > 0.999
    # Enrolment is not flipped, so galleries stay the same with and without the option.
    plain.enroll("eileen", [astronaut])
    flipped.enroll("eileen", [astronaut])
    np.testing.assert_allclose(plain.gallery.embeddings, flipped.gallery.embeddings, atol=1e-6)


def test_network_hallucinator_gets_tiny_faces_warped_straight_to_its_input_side(astronaut):
    # One resampling of the frame, as the generator was trained: the face is warped from the frame to
    # the model's own input side (from its weight file), not first to its own ~16 px side and resized.
    pipe = fhsdk.Pipeline(hallucinator="default", track=False, min_face_size=12)
    scene = _scene(astronaut, 80)  # an 18 px face region, below the default gate
    face = pipe.process(scene).faces[0]
    assert face.hallucinated and face.size_px < pipe.gate_px
    side = pipe.hallucinator.native_side
    embed = pipe.lr_embedder  # the recogniser(s) for hallucinated faces
    direct = embed(pipe.hallucinate(pipe.align(scene, [face], size=side)))[0]
    assert float(face.embedding @ direct) > 0.9999
    own = embed(pipe.hallucinate(pipe.align(scene, [face], size=int(round(face.size_px)))))[0]
    assert float(face.embedding @ own) < 0.9999  # the two paths differ


def test_lr_recognizer_embeds_only_hallucinated_faces_and_leaves_the_gallery_alone(astronaut, tmp_path):
    shipped = fhsdk.Pipeline(hallucinator="bicubic", gate_px=48, track=False)
    state = {name: tensor.clone() for name, tensor in shipped.embedder.network.state_dict().items()}
    state["fc.weight"] += 0.02 * torch.randn_like(state["fc.weight"], generator=torch.Generator().manual_seed(0))
    weights = tmp_path / "recognizer_lr.pt"
    torch.save({name: tensor.half() for name, tensor in state.items()}, weights)  # float16, as packaged
    adapted = fhsdk.Pipeline(hallucinator="bicubic", gate_px=48, track=False, lr_recognizer=weights)

    # Galleries are embedded by the recogniser's own weights: a gallery file stays valid either way.
    assert adapted.gallery.recognizer_fingerprint == shipped.embedder.fingerprint
    assert adapted.lr_embedder.fingerprint != adapted.embedder.fingerprint
    shipped.enroll("eileen", [astronaut])
    adapted.enroll("eileen", [astronaut])
    np.testing.assert_allclose(adapted.gallery.embeddings, shipped.gallery.embeddings, atol=1e-6)
    # A large face is not hallucinated: same embedding.
    large = adapted.process(astronaut).faces[0]
    assert not large.hallucinated
    assert float(large.embedding @ shipped.process(astronaut).faces[0].embedding) > 0.99999
    # A tiny face is hallucinated and embedded by the adapted weights.
    scene = _scene(astronaut, 64)
    tiny = adapted.process(scene).faces[0]
    restored = adapted.hallucinate(adapted.align(scene, [tiny], size=int(round(tiny.size_px))))
    assert tiny.hallucinated
    assert float(tiny.embedding @ adapted.lr_embedder(restored)[0]) > 0.999
    assert float(tiny.embedding @ shipped.process(scene).faces[0].embedding) < 0.999


def test_lr_recognizer_names_a_packaged_model_or_fails_clearly(tmp_path):
    with pytest.raises(fhsdk.WeightsError, match="not found"):
        fhsdk.Pipeline(hallucinator="bicubic", lr_recognizer=tmp_path / "missing.pt")
