"""Bad input everywhere a user hands fhsdk data: frames, faces, galleries, weights and configs.

Each case either raises its specific fhsdk.FHSDKError subclass (with a message that says what to do)
or is handled the way a user wants (grey converted, faces at the border padded). Video files and
streams are in test_video_files.py and test_streams.py, gallery files in test_gallery.py.
"""

import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fhsdk
from fhsdk import ConfigError, InvalidInputError, WeightsError
from fhsdk.align import align, as_bgr_image
from fhsdk.degrade import resize_bicubic
from fhsdk.hallucinate import create_hallucinator
from fhsdk.kernels import cosine_topk
from fhsdk.weights import check_packaged


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()[:, :, ::-1].copy()


@pytest.fixture(scope="module")
def pipe(astronaut):
    pipe = fhsdk.Pipeline(hallucinator="bicubic")
    pipe.enroll("eileen", [astronaut])
    return pipe


# ---- frames ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame, match",
    [
        (np.zeros((32, 32, 3), np.float32), "uint8"),
        (np.full((32, 32, 3), np.nan), "uint8"),
        (np.full((32, 32, 3), 300.0), "uint8"),
        (np.zeros((32, 32, 3), np.uint16), "uint8"),
        (np.zeros((32, 32, 3), bool), "uint8"),
        (np.zeros((32, 32, 3), np.int64), "uint8"),
        (np.zeros((32, 32, 2), np.uint8), "H x W x 3"),
        (np.zeros((32, 32, 5), np.uint8), "H x W x 3"),
        (np.zeros(32 * 32 * 3, np.uint8), "H x W x 3"),
        (np.zeros((2, 32, 32, 3), np.uint8), "H x W x 3"),
        (np.zeros((0, 32, 3), np.uint8), "empty"),
        ([[1, 2], [3, 4]], "NumPy array"),
        (None, "NumPy array"),
        ("frame.jpg", "NumPy array"),
    ],
)
def test_bad_frames_are_refused_with_the_fix(pipe, frame, match):
    with pytest.raises(InvalidInputError, match=match):
        pipe.process(frame)


def test_grey_bgra_and_non_contiguous_frames_are_converted(pipe, astronaut):
    reference = pipe.process(astronaut).faces[0]
    grey = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    variants = {
        "bgra": cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA),
        "strided": np.concatenate([astronaut, astronaut], axis=1)[:, ::2],  # every other column of a 2x-wide copy
        "fortran": np.asfortranarray(astronaut),
    }
    for name, frame in variants.items():
        face = pipe.process(frame).faces[0]
        if name == "strided":
            assert face.identity == "eileen", name
        else:
            np.testing.assert_allclose(face.embedding, reference.embedding, atol=1e-5, err_msg=name)
    for frame in (grey, grey[:, :, None]):
        faces = pipe.process(frame).faces
        assert len(faces) == 1 and faces[0].identity == "eileen"


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (2, 2, 4), (3, 500, 3), (500, 3, 3)])
def test_tiny_and_degenerate_frames_give_no_faces(pipe, shape):
    assert pipe.process(np.zeros(shape, np.uint8)).faces == []


def test_8k_frame(pipe, astronaut):
    frame = np.full((4320, 7680, 3), 90, np.uint8)
    frame[2000:2512, 3000:3512] = cv2.resize(astronaut, (512, 512), interpolation=cv2.INTER_AREA)
    faces = pipe.process(frame).faces
    assert len(faces) == 1 and faces[0].identity == "eileen" and not faces[0].hallucinated


# ---- faces ----------------------------------------------------------------------------------


def test_frame_without_faces(pipe):
    rng = np.random.default_rng(0)
    result = pipe.process(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    assert result.faces == []


def test_hundreds_of_faces_in_one_frame(pipe, astronaut):
    tile = cv2.resize(astronaut, (64, 64), interpolation=cv2.INTER_AREA)
    result = pipe.process(np.tile(tile, (16, 16, 1)))  # 256 faces of ~15 px, all gated to hallucination
    assert len(result.faces) >= 200
    embeddings = np.stack([f.embedding for f in result.faces])
    assert np.isfinite(embeddings).all() and np.allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-4)
    assert sum(f.hallucinated for f in result.faces) >= 200


@pytest.mark.parametrize("cut", [0.2, 0.45])
def test_face_cut_by_the_frame_border_is_padded_and_identified(pipe, astronaut, cut):
    box = pipe.detect(astronaut)[0].box
    shift = int(box[0] + cut * (box[2] - box[0]))  # this fraction of the face lies left of the frame
    frame = np.ascontiguousarray(astronaut[:, shift:])
    faces = pipe.process(frame).faces
    assert len(faces) == 1 and faces[0].box[0] < 0
    assert faces[0].identity == "eileen"
    crop = pipe.align(frame, faces, size=64)[0]
    assert crop.shape == (64, 64, 3) and (crop[:, :4] == 0).all()  # the part outside the frame is padding


def test_empty_gallery_names_nobody(astronaut):
    pipe = fhsdk.Pipeline(hallucinator="bicubic")
    face = pipe.process(astronaut).faces[0]
    assert face.identity is None and np.isnan(face.similarity)
    indices, similarities = pipe.gallery.search(face.embedding, k=5)
    assert indices.shape == (1, 0) and similarities.shape == (1, 0)


# ---- weights --------------------------------------------------------------------------------


def _write_evil_pickle(path, marker):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"arch": "edsr", "state_dict": Payload()}, path)


@pytest.mark.parametrize("content", ["missing", "empty", "random", "truncated", "text", "wrong_keys", "code"])
def test_bad_hallucinator_files_are_refused(tmp_path, content):
    path = tmp_path / "generator.pt"
    marker = tmp_path / "code_ran"
    packaged = fhsdk.hallucinate.Path(fhsdk.hallucinate.__file__).parent / "weights" / "hallucinator_default.pt"
    if content == "empty":
        path.write_bytes(b"")
    elif content == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif content == "truncated":
        path.write_bytes(packaged.read_bytes()[:5000])
    elif content == "text":
        path.write_text("weights: none\n")
    elif content == "wrong_keys":
        torch.save({"something": torch.zeros(3)}, path)
    elif content == "code":
        _write_evil_pickle(path, marker)
    with pytest.raises(WeightsError, match="hallucinator|not found"):
        create_hallucinator(str(path))
    assert not marker.exists(), "a pickled payload in a weight file was executed"


def test_packaged_model_is_checked_against_its_recorded_hash(tmp_path):
    packaged = fhsdk.hallucinate.Path(fhsdk.hallucinate.__file__).parent / "weights" / "hallucinator_default.pt"
    copy = tmp_path / packaged.name
    data = bytearray(packaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    (tmp_path / (packaged.name + ".sha256")).write_text((packaged.parent / (packaged.name + ".sha256")).read_text())
    with pytest.raises(WeightsError, match="SHA-256"):
        check_packaged(copy, "hallucinator")
    check_packaged(packaged, "hallucinator")  # the shipped file passes


def test_an_install_without_a_packaged_hallucinator_says_what_to_pass(monkeypatch, tmp_path):
    monkeypatch.setitem(fhsdk.hallucinate.PACKAGED, "default", tmp_path / "absent.pt")
    with pytest.raises(WeightsError, match="no 'default' hallucinator is packaged.*bicubic"):
        create_hallucinator("default")


def test_training_checkpoint_with_code_is_refused(tmp_path):
    from train.checkpoint_io import load_checkpoint

    marker = tmp_path / "code_ran"
    _write_evil_pickle(tmp_path / "last.pt", marker)
    with pytest.raises(WeightsError, match="refused, never run"):
        load_checkpoint(tmp_path / "last.pt")
    assert not marker.exists()
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 20)
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "cut.pt")


def test_missing_weight_package_says_what_to_install():
    from fhsdk.weights import package_file

    with pytest.raises(WeightsError, match="pip install no-such-weights-package"):
        package_file("no_such_weights_package", "model.dat")


# ---- configs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, error, match",
    [
        ("backend: [torch\n", ConfigError, "not valid YAML"),
        ("- torch\n- cpu\n", ConfigError, "mapping"),
        ("hallucinatr: bicubic\n", ConfigError, "unknown keys hallucinatr"),
        ("backend: tensorflow\n", InvalidInputError, "unknown backend"),
        ("hallucinator: nonsense\n", ConfigError, "unknown hallucinator"),
        ("detector: yolo\n", InvalidInputError, "unknown detector"),
        ("threshold: high\n", ConfigError, "threshold"),
        ("threshold: 1.5\n", ConfigError, "threshold"),
        ("gate_px: -4\n", ConfigError, "gate_px"),
        ("batch_frames: 0\n", ConfigError, "batch_frames"),
        ("min_face_size: 3\n", ConfigError, "min_face_size"),
        ("device: tpu\n", ConfigError, "device"),
    ],
)
def test_invalid_pipeline_configs(tmp_path, text, error, match):
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    with pytest.raises(error, match=match):
        fhsdk.Pipeline.from_config(path)


def test_missing_pipeline_config(tmp_path):
    with pytest.raises(ConfigError, match="no pipeline config"):
        fhsdk.Pipeline.from_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    "args, match",
    [
        (("no_such_method",), "not found"),
        (("lai", "gpu_huge"), "no preset 'gpu_huge'"),
        (("lai", None, ["train.steps"]), "key.sub=value"),
        (("lai", None, ["train.steps.deeper=3"]), "not a section"),
    ],
)
def test_invalid_training_configs(args, match):
    from train.config import load_config

    with pytest.raises(ConfigError, match=match):
        load_config(*args)


# ---- property-based: array-facing functions never crash, never return malformed arrays --------

_images = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int32, bool]),
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_images)
def test_as_bgr_image_returns_a_valid_frame_or_refuses(image):
    try:
        out = as_bgr_image(image)
    except InvalidInputError:
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.flags.c_contiguous
    assert out.shape[:2] == image.shape[:2] and min(out.shape[:2]) >= 1


@settings(max_examples=100, deadline=None)
@given(
    landmarks=hnp.arrays(
        np.float64,
        st.sampled_from([(5, 2), (1, 5, 2), (3, 5, 2), (4, 2), (2, 5, 3)]),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=32),
    ),
    size=st.integers(-2, 40),
)
def test_align_returns_crops_or_refuses(landmarks, size):
    frame = np.full((60, 80, 3), 128, np.uint8)
    try:
        crops = align(frame, landmarks, size)
    except InvalidInputError:
        return
    n = 1 if landmarks.ndim == 2 else landmarks.shape[0]
    assert crops.shape == (n, size, size, 3) and crops.dtype == np.uint8


@settings(max_examples=100, deadline=None)
@given(
    crops=hnp.arrays(
        st.sampled_from([np.uint8, np.float32]), hnp.array_shapes(min_dims=2, max_dims=5, min_side=0, max_side=12)
    ),
    side=st.integers(-1, 40),
)
def test_resize_bicubic_returns_crops_or_refuses(crops, side):
    try:
        out = resize_bicubic(crops, side)
    except InvalidInputError:
        return
    assert out.shape == (crops.shape[0], side, side, 3) and out.dtype == np.uint8


@settings(max_examples=150, deadline=None)
@given(
    queries=hnp.arrays(
        st.sampled_from([np.float32, np.float64, np.float16]),
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
        elements=st.floats(-2, 2, width=16) | st.just(np.nan),
    )
    | hnp.arrays(np.int64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=6)),
    gallery_rows=st.integers(0, 7),
    same_dim=st.booleans(),
    k=st.integers(-2, 9),
)
def test_cosine_topk_front_returns_topk_or_refuses(queries, gallery_rows, same_dim, k):
    dim = queries.shape[-1] if same_dim else queries.shape[-1] + 1
    gallery = np.random.default_rng(gallery_rows).standard_normal((gallery_rows, dim)).astype(np.float32)
    try:
        indices, similarities = cosine_topk(queries, gallery, k)
    except InvalidInputError:
        return
    expected = (min(k, gallery_rows),) if queries.ndim == 1 else (queries.shape[0], min(k, gallery_rows))
    assert indices.shape == similarities.shape == expected
    assert ((indices >= 0) & (indices < max(gallery_rows, 1))).all()


@pytest.mark.parametrize(
    "crops", [np.zeros((2, 16, 16), np.uint8), np.zeros((2, 16, 16, 3), np.float64), np.zeros((0, 16, 16, 3), np.uint8)]
)
def test_hallucinator_refuses_or_handles_bad_batches(crops):
    hallucinator = create_hallucinator("default")
    if len(crops) == 0:
        assert hallucinator(crops).shape == (0, 128, 128, 3)
    else:
        with pytest.raises(InvalidInputError):
            hallucinator(crops)


def test_mtcnn_weight_reader_reads_arrays_and_refuses_code(tmp_path):
    import joblib

    from fhsdk.detect.mtcnn_nets import WEIGHTS_FILES, _load_arrays
    from fhsdk.weights import package_file

    shipped = package_file("mtcnn", WEIGHTS_FILES["onet"])
    for ours, theirs in zip(_load_arrays(shipped), joblib.load(shipped), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    marker = tmp_path / "code_ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    joblib.dump([np.zeros(3, np.float32), Payload()], tmp_path / "onet.lz4", compress="lz4")
    with pytest.raises(pickle.UnpicklingError, match="arrays only"):
        _load_arrays(tmp_path / "onet.lz4")
    assert not marker.exists()
    # an object array's payload is a nested pickle that joblib < 1.5 reads with a plain pickle.load, past
    # find_class (issue 15, 3.7): it is refused before it is read, whichever joblib is installed
    payload = np.empty(1, dtype=object)
    payload[0] = Payload()
    joblib.dump([np.zeros(3, np.float32), payload], tmp_path / "rnet.lz4", compress="lz4")
    with pytest.raises(pickle.UnpicklingError, match="array of Python objects"):
        _load_arrays(tmp_path / "rnet.lz4")
    assert not marker.exists()


def _similarity(scale, angle, tx, ty):
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


ACCEPTED = {"affine": 0, "batch": 0}  # how many generated cases reached a kernel (checked below)


@settings(max_examples=150, deadline=None)
@given(
    frame=st.one_of(
        *[hnp.arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3)))] * 3
    )  # frames, mostly
    | hnp.arrays(
        st.sampled_from([np.uint8, np.float32, np.int16]),
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=12),
    ),
    affines=st.one_of(
        *[st.builds(_similarity, st.floats(0.1, 5), st.floats(-3.2, 3.2), st.floats(-50, 50), st.floats(-50, 50))] * 3
    )
    | hnp.arrays(
        np.float64,
        st.sampled_from([(2, 3), (0, 2, 3), (3, 2, 3), (2, 2), (1, 3, 3)]),
        elements=st.floats(-1e6, 1e6) | st.sampled_from([np.nan, np.inf, 0.0]),
    ),
    size=st.sampled_from([1, 7, (5, 9), 3, 12, (8, 2), 0, -3, (0, 4)]),
    swap_rb=st.booleans(),
)
def test_resize_normalize_affine_front_returns_a_batch_or_refuses(frame, affines, size, swap_rb):
    from fhsdk.kernels import resize_normalize_affine

    try:
        out = resize_normalize_affine(frame, affines, size, (127.5, 127.5, 127.5), 1 / 128, swap_rb=swap_rb)
    except InvalidInputError:
        return
    h, w = (size, size) if isinstance(size, int) else size
    n = 1 if affines.ndim == 2 else affines.shape[0]
    ACCEPTED["affine"] += 1
    assert out.shape == (n, 3, h, w) and out.dtype == np.float32


@settings(max_examples=150, deadline=None)
@given(
    images=hnp.arrays(np.float32, st.tuples(*[st.integers(1, 6)] * 4), elements=st.floats(0, 255, width=32))  # a batch
    | hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=2, max_dims=5, min_side=0, max_side=9),
        elements=st.floats(-300, 300, width=32) | st.just(np.nan),
    )
    | hnp.arrays(np.uint8, hnp.array_shapes(min_dims=4, max_dims=4, max_side=6)),
    size=st.sampled_from([1, 6, (3, 8), 0, -1]),
)
def test_resize_normalize_batch_front_returns_a_batch_or_refuses(images, size):
    from fhsdk.kernels import resize_normalize_batch

    try:
        out = resize_normalize_batch(images, size, 127.5, 1 / 128)
    except InvalidInputError:
        return
    h, w = (size, size) if isinstance(size, int) else size
    ACCEPTED["batch"] += 1
    assert out.shape == images.shape[:2] + (h, w) and out.dtype == np.float32


def test_the_kernel_fronts_fuzz_reached_the_kernels():
    """The two fuzz tests above must not pass only by refusing everything."""
    if ACCEPTED["affine"] == 0 and ACCEPTED["batch"] == 0:
        pytest.skip("run together with the fuzz tests above")
    assert ACCEPTED["affine"] >= 10 and ACCEPTED["batch"] >= 10, ACCEPTED


# ---- hostile input (issue 15: 3.4 raw errors, 3.6 frame size) ---------------------------------------------


@pytest.mark.parametrize("name", ["bicubic", "default"])
def test_negative_stride_crops_are_taken_by_hallucinate_as_by_embed(pipe, name):
    crops = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    mirrored = crops[:, :, ::-1]  # a view with a negative stride: torch.from_numpy refused it (ValueError)
    hallucinator = create_hallucinator(name)
    np.testing.assert_array_equal(hallucinator(mirrored), hallucinator(mirrored.copy()))
    np.testing.assert_array_equal(pipe.embed(hallucinator(mirrored)), pipe.embed(hallucinator(mirrored.copy())))


def test_oversized_crops_and_frames_are_refused_before_allocating(pipe, astronaut):
    faces = pipe.detect(astronaut)
    with pytest.raises(InvalidInputError, match="crop size must be an integer from 1 to 4096"):
        pipe.align(astronaut, faces, size=100000)  # tried to allocate 112 GiB
    with pytest.raises(InvalidInputError, match="4096"):
        resize_bicubic(np.zeros((1, 16, 16, 3), np.uint8), 100000)
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (20000, 20000, 3))  # no memory of its own
    with pytest.raises(InvalidInputError, match="20000 x 20000 px, over the 67 MP"):
        pipe.process(huge)  # needed > 20 GB and failed inside torch's allocator


def test_enroll_without_images_and_mismatched_batch_indices_are_refused(pipe, astronaut):
    for images in ([], None, ()):
        with pytest.raises(InvalidInputError, match="enroll"):
            pipe.enroll("nobody", images)
    assert "nobody" not in pipe.gallery.identities
    with pytest.raises(InvalidInputError, match="2 frames but 1 indices"):  # zip() dropped the second frame
        pipe.process_batch([astronaut, astronaut], indices=[0])
    with pytest.raises(InvalidInputError, match="1 frames but 2 timestamps"):
        pipe.process_batch([astronaut], timestamps=[0.0, 1.0])


def _unwritable_folder(tmp_path):
    """A folder no one can write in: read-only by mode, or /sys where tests run as root (root ignores modes)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.parametrize("where", ["read-only folder", "file in the way", "name too long"])
def test_gallery_save_to_an_unwritable_path_raises_output_error(tmp_path, where):
    from fhsdk.gallery import Gallery, check_writable

    path = {
        "read-only folder": lambda: _unwritable_folder(tmp_path) / "g.npz",
        "file in the way": lambda: tmp_path / "file" / "g.npz",
        "name too long": lambda: tmp_path / ("g" * 250 + ".npz"),
    }[where]()
    (tmp_path / "file").write_text("not a folder")
    gallery = Gallery(4, "fp")
    gallery.add("a", np.ones(4, np.float32))
    for attempt in (lambda: gallery.save(path), lambda: check_writable(path)):
        with pytest.raises(fhsdk.OutputError, match="cannot write the gallery to .*choose a path"):
            attempt()


def test_unreadable_gallery_raises_gallery_error():
    from fhsdk.gallery import Gallery

    if not Path("/proc/self/mem").is_file():
        pytest.skip("needs Linux's /proc/self/mem (a file whose read fails with EIO)")
    with pytest.raises(fhsdk.GalleryError, match="cannot read gallery /proc/self/mem"):
        Gallery.load("/proc/self/mem")


def test_enrolling_a_fifo_named_jpg_is_refused_not_hung(pipe, tmp_path):
    import threading

    from fhsdk import ImageReadError

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    outcome = []

    def enroll():
        try:
            pipe.enroll("fifo", fifo)
        except Exception as error:
            outcome.append(error)

    worker = threading.Thread(target=enroll, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # blocked in open(): give it an end of file so the thread can finish
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert outcome and isinstance(outcome[0], ImageReadError) and "not a regular file" in str(outcome[0])


def test_truncated_jpeg_enrols_with_a_warning(pipe, astronaut, tmp_path, caplog):
    import logging

    photo = tmp_path / "half.jpg"
    data = cv2.imencode(".jpg", astronaut)[1].tobytes()
    photo.write_bytes(data[: len(data) // 2])  # the face is in the top half: it still enrols
    with caplog.at_level(logging.WARNING, logger="fhsdk.pipeline"):
        assert pipe.enroll("half", photo) == 1
    assert "truncated JPEG" in caplog.text
    pipe.gallery.remove("half")


def _unreadable_file(tmp_path):
    """A regular file that open() refuses with EACCES: mode 000, or (as root, who ignores modes) a
    write-only sysfs file where one exists."""
    path = tmp_path / "locked.avi"
    path.write_bytes(b"RIFF" + bytes(4096))
    path.chmod(0)
    for candidate in (path, Path("/sys/bus/pci/rescan")):
        try:
            open(candidate, "rb").close()
        except PermissionError:
            return candidate
        except OSError:
            continue
    pytest.skip("no file here refuses reading with EACCES (running as root without sysfs)")


def test_permission_denied_video_is_reported_as_such(pipe, tmp_path):
    from fhsdk import VideoSourceError

    with pytest.raises(VideoSourceError, match="Permission denied.*check its permissions"):
        next(pipe.stream(_unreadable_file(tmp_path)))  # was: "cannot decode ... corrupt"
