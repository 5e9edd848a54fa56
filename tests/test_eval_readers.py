"""Dataset readers on tiny fabricated copies of each layout (see ../shared/reference/datasets.md)."""

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from bindkit.data import LoadError
from bindkit.evaluate import readers as R
from bindkit.evaluate.embed import load_items
from bindkit.evaluate.readers.matfile import read_mat_strings
from bindkit.evaluate.readers.thermal import background_boxes


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_esc50(tmp_path):
    base = tmp_path / "ESC-50-master"
    rows = ["filename,fold,target,category,esc10,src_file,take",
            "1-100032-A-0.wav,1,0,dog,True,100032,A", "2-1-B-1.wav,2,1,rooster,False,1,B",
            "1-7-A-1.wav,1,1,rooster,False,7,A", "5-9-A-2.wav,5,2,sea_waves,False,9,A"]  # fmt: skip
    touch(base / "meta/esc50.csv", "\n".join(rows).encode())
    for r in rows[1:]:
        touch(base / "audio" / r.split(",")[0])
    ds = R.read_esc50(tmp_path)
    assert ds.class_names == ["dog", "rooster", "sea waves"]  # target order, '_' read as space
    assert ds.labels == [0, 1, 1, 2] and ds.folds == [1, 2, 1, 5] and ds.kind == "classification"
    assert [it.path.name for it in ds.items][0] == "1-100032-A-0.wav" and ds.modality == "audio"
    assert R.read_esc50(tmp_path, folds=(1,)).labels == [0, 1]
    (base / "audio/5-9-A-2.wav").unlink()
    with pytest.raises(FileNotFoundError, match="5-9-A-2.wav"):
        R.read_esc50(tmp_path)
    assert len(R.read_esc50(tmp_path, missing="skip").missing) == 1


def test_clotho_quoted_names_and_captions(tmp_path):
    caps = ('file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n'
            'a b.wav,One dog barks.,"Two, three dogs.",c3,c4,c5\n'
            '"c,d.wav",Rain falls.,r2,r3,r4,r5\n')  # fmt: skip
    touch(tmp_path / "clotho_csv_files/clotho_captions_evaluation.csv", caps.encode())
    touch(tmp_path / "clotho_audio_files/evaluation/a b.wav")
    touch(tmp_path / "clotho_audio_files/evaluation/c,d.wav")
    ds = R.read_clotho(tmp_path)
    assert [it.path.name for it in ds.items] == ["a b.wav", "c,d.wav"]
    assert ds.captions[0] == ["One dog barks.", "Two, three dogs.", "c3", "c4", "c5"]
    assert ds.kind == "retrieval" and len(ds.captions[1]) == 5


def test_audiocaps_groups_noncontiguous_rows_and_skips_absent_clips(tmp_path):
    rows = ["audiocap_id,youtube_id,start_time,caption"]
    for i in range(5):
        rows += [f"{10 + i},abc-_1,30,clip one caption {i}", f'{20 + i},zzz,0,"clip two, caption {i}"']
    rows += [f"{30 + i},gone,10,missing {i}" for i in range(5)]
    touch(tmp_path / "dataset/test.csv", "\r\n".join(rows).encode())  # v1 files are CRLF
    touch(tmp_path / "audio/test/abc-_1_30.wav")
    touch(tmp_path / "audio/test/Yzzz.wav")
    ds = R.read_audiocaps(tmp_path)
    assert [it.path.name for it in ds.items] == ["abc-_1_30.wav", "Yzzz.wav"]
    assert ds.captions[0] == [f"clip one caption {i}" for i in range(5)]
    assert ds.captions[1][0] == "clip two, caption 0"
    assert ds.missing == [("gone@10", "no media file")]


def test_audioset_segments_and_labels(tmp_path):
    seg = ("# Segments csv created Sun Mar  5 10:54:25 2017\n"
           "# num_ytids=2, num_segs=2, num_unique_labels=3, num_positive_labels=4\n"
           "# YTID, start_seconds, end_seconds, positive_labels\n"
           '--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_"\n'
           'x_y-z, 30.000, 40.000, "/m/05zppz"\n')  # fmt: skip
    lab = 'index,mid,display_name\n0,/m/068hy,"Dog"\n1,/m/05zppz,"Male speech, man speaking"\n2,/m/07q6cd_,"Squeak"\n'
    touch(tmp_path / "metadata/eval_segments.csv", seg.encode())
    touch(tmp_path / "metadata/class_labels_indices.csv", lab.encode())
    touch(tmp_path / "audios/eval_segments/Y--4gqARaEJE.wav")
    ds = R.read_audioset(tmp_path)
    assert ds.kind == "multilabel" and ds.class_names[1] == "Male speech, man speaking"
    assert ds.labels == [[0, 2]] and ds.missing == [("x_y-z", "no media file")]
    touch(tmp_path / "audios/eval_segments/x_y-z_30.flac")
    assert R.read_audioset(tmp_path).labels == [[0, 2], [1]]


def test_vggsound_full_csv_and_split_files(tmp_path):
    rows = '---g-f_I2yQ,1,people marching,test\n--0PQM4-hqg,30,waterfall burbling,train\n0_8-g2rof7E,49,"dog, barking",test\n'
    touch(tmp_path / "vggsound.csv", rows.encode())
    touch(tmp_path / "video/---g-f_I2yQ_000001.mp4")
    touch(tmp_path / "video/0_8-g2rof7E_000049.mp4")
    ds = R.read_vggsound(tmp_path)
    assert ds.class_names == ["dog, barking", "people marching", "waterfall burbling"]  # all labels, sorted
    assert ds.labels == [1, 0] and len(ds.items) == 2
    other = tmp_path / "other"
    touch(other / "data/test.csv", b"0_8-g2rof7E_000049.mp4,dog barking\r\n")
    touch(other / "clips/0_8-g2rof7E_000049.wav")
    ds = R.read_vggsound(other)  # split on the LAST underscore: the id holds one
    assert ds.items[0].path.name == "0_8-g2rof7E_000049.wav" and ds.class_names == ["dog barking"]


def test_nyud_nicr_layout_maps_27_types_and_others_names(tmp_path):
    for i, scene in enumerate(["bedroom", "dining_room", "excercise_room", "cafe"]):
        touch(tmp_path / f"test/depth/{i:04d}.png")
        touch(tmp_path / f"test/scene_class/{i:04d}.txt", scene.encode())
    ds = R.read_nyud(tmp_path)
    assert ds.labels == [1, 4, 9, 9] and ds.class_names[9] == "others"
    assert len(ds.prompt_names[9]) == 18 and "exercise room" in ds.prompt_names[9]
    assert ds.items[0].kwargs == {"baseline": 0.075, "encoding": "mm", "focal_length": pytest.approx(518.858)}


def test_nyud_folder_layout(tmp_path):
    touch(tmp_path / "nyuv2/data/val/dining_room/a.png")
    touch(tmp_path / "nyuv2/data/val/others/b.png")
    touch(tmp_path / "nyuv2/data/val/bathroom/c.png")
    ds = R.read_nyud(tmp_path)
    assert sorted(ds.labels) == [0, 4, 9]


def _sun_sample(root: Path, rel: str, scene: str, fx: float):
    s = root / rel
    touch(s / "depth_bfx/0001.png")
    touch(s / "depth/0001.png")
    touch(s / "image/0001.jpg")
    touch(s / "intrinsics.txt", f"{fx} 0 300\n0 {fx} 200\n0 0 1\n".encode())
    touch(s / "scene.txt", scene.encode())


def test_sund_sensors_focal_split_and_exclusions(tmp_path):
    root = tmp_path / "SUNRGBD"
    _sun_sample(root, "kv1/NYUdata/NYU0001", "bedroom", 518.86)
    _sun_sample(root, "realsense/lg/2014_10_24-1", "study_space", 693.0)
    _sun_sample(root, "xtion/sun3ddata/mit_1/seq/0003", "idk", 570.0)
    test = tmp_path / "test.txt"
    test.write_text("/n/fs/sun3d/data/SUNRGBD/kv1/NYUdata/NYU0001/\n")
    ds = R.read_sund(tmp_path, test_list=test)
    assert ds.labels == [1, 18] and ds.class_names[18] == "study space"
    assert ds.items[1].kwargs == {"baseline": 0.095, "encoding": "sunrgbd", "focal_length": 693.0}
    assert ds.items[0].path.parent.name == "depth_bfx"  # in-filled depth preferred
    assert ds.splits == ["test", "train"] and ds.excluded == {"scene 'idk' outside the 19 classes": 1}


# allsplit.mat as the SUN RGB-D toolbox stores it (cell arrays of toolbox paths), written by scipy.io.savemat
# (scipy 1.17.1, do_compression=True) so that the reader is checked against an independent writer.
ALLSPLIT_MAT = base64.b64decode(
    "TUFUTEFCIDUuMCBNQVQtZmlsZSBQbGF0Zm9ybTogcG9zaXgsIENyZWF0ZWQgb246IFN1biBOb3YgMjkgMTE6MDM6MzIgMjAyNgAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABSU0PAAAAaQAAAHic42NgYFgAxGxAzAHE"
    "jAwQwIrEh2EQPzEnp6QoMTOPD8jOQNLHgkWfMZJ5AlC+fp5+WrF+cWmecYp+SmJJon5wqF+Qu5OLflFqYk5xal5xqn5Our6RgaFJ"
    "vKFBvJGJrqE+WD8AbCQVAw8AAABfAAAAeJzjY2BgmAHEbEDMAcSMDBDAisSHYXYgTszJKUktLmHgA7ITkPSxYNGni2SeAJSvn6ef"
    "VqxfXJpnnKKfkliSqB8c6hfk7uSin11mqO8XGQoWA9IGBgaG+kD1AIY/Eq4PAAAAjwAAAHic42NgYNBgZGBgA9IcQMzEAAGsUD4j"
    "EuYF4pKixMy8ssSc4oKczBKwOhawXpA8D0yeAagAag4fEM9gQJjPiMd8mPoMJPUsWNQbI6kXgPL18/TTivWLS/OMU/RTEksS9YND"
    "/YLcnVz0i1KBjk3NK07Vz0nXNzIwNIk3NIg3MtE11Ifbp0HAfQxINAARlRte"
)


def test_mat_reader_on_a_scipy_written_file(tmp_path):
    (tmp_path / "a.mat").write_bytes(ALLSPLIT_MAT)
    t = read_mat_strings(tmp_path / "a.mat")
    assert t["alltest"] == ["/n/fs/sun3d/data/SUNRGBD/kv1/NYUdata/NYU0001/"]
    assert t["alltrain"] == ["/n/fs/sun3d/data/SUNRGBD/realsense/lg/2014_10_24-1/"]
    assert t["trainvalsplit"] == {"train": t["alltrain"], "val": []}
    (tmp_path / "b.mat").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(600))
    with pytest.raises(ValueError, match="v7.3"):
        read_mat_strings(tmp_path / "b.mat")


def test_sund_split_from_allsplit_mat(tmp_path):
    root = tmp_path / "SUNRGBD"
    _sun_sample(root, "kv1/NYUdata/NYU0001", "bedroom", 518.86)
    _sun_sample(root, "realsense/lg/2014_10_24-1", "study_space", 693.0)
    _sun_sample(root, "kv2/align_kv2/x", "office", 529.5)  # in neither list: left out, counted
    touch(tmp_path / "SUNRGBDtoolbox/traintestSUNRGBD/allsplit.mat", ALLSPLIT_MAT)
    ds = R.read_sund(root)  # the toolbox lies beside the data folder
    assert ds.splits == ["test", "train"] and ds.labels == [1, 18]
    assert list(ds.excluded.values()) == [1] and "allsplit.mat" in next(iter(ds.excluded))


def _voc(stem: str, boxes) -> bytes:
    objs = "".join(
        f"<object><name>person</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
        f"<bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for a, b, c, d in boxes
    )
    return (f'<?xml version="1.0" ?><annotation><folder>JPEGImages</folder><filename>{stem}.jpg</filename><path></path>'
            f"<source><database>Unknown</database></source><size><width>1280</width><height>1024</height>"
            f"<depth>1</depth></size><segmented>0</segmented>{objs}</annotation>").encode()  # fmt: skip


def test_llvip_person_and_background_boxes(tmp_path):
    root = tmp_path / "LLVIP"
    persons = [(402, 284, 518, 546), (700, 300, 760, 450)]
    touch(root / "Annotations/190001.xml", _voc("190001", persons))
    touch(root / "Annotations/010001.xml", _voc("010001", [(1, 1, 50, 90)]))  # a train image: not read
    touch(root / "infrared/test/190001.jpg")
    touch(root / "infrared/train/010001.jpg")
    ds = R.read_llvip(tmp_path)
    assert ds.labels == [0, 1, 0, 1] and ds.prompt_names[0] == ["person", "man", "woman", "people"]
    boxes = [it.box for it in ds.items]
    assert boxes[0] == persons[0] and boxes[2] == persons[1]
    for bg, p in ((boxes[1], persons[0]), (boxes[3], persons[1])):
        assert (bg[2] - bg[0], bg[3] - bg[1]) == (p[2] - p[0], p[3] - p[1])  # pedestrian-sized
        assert all(bg[2] <= q[0] or q[2] <= bg[0] or bg[3] <= q[1] or q[3] <= bg[1] for q in persons)
        assert 0 <= bg[0] and bg[2] <= 1280 and 0 <= bg[1] and bg[3] <= 1024
    assert [it.box for it in R.read_llvip(tmp_path).items] == boxes  # deterministic


def test_background_box_not_placeable_is_reported():
    assert background_boxes((100, 100), [(0, 0, 100, 100)], seed=0) == [None]


def test_ego4d_windows_and_imu_csv(tmp_path):
    v2 = tmp_path / "v2"
    meta = {"videos": [
        {"video_uid": "0ce20f1b-104c", "has_imu": True, "scenarios": ["Cooking"],
         "video_metadata": {"video_duration_sec": 12.0, "audio_start_sec": None}},
        {"video_uid": "multi", "has_imu": True, "scenarios": ["Cooking", "Cleaning"],
         "video_metadata": {"video_duration_sec": 30.0}},
        {"video_uid": "noimu", "has_imu": False, "scenarios": ["Biking"], "video_metadata": {"video_duration_sec": 9}},
        {"video_uid": "lost", "has_imu": True, "scenarios": ["Working at desk"],
         "video_metadata": {"video_duration_sec": 6.0}},
    ], "clips": []}  # fmt: skip
    touch(v2 / "ego4d.json", json.dumps(meta).encode())
    t = np.arange(0, 12000, 5.0)  # 200 Hz for 12 s, in ms
    lines = [
        "component_idx,component_timestamp_ms,canonical_timestamp_ms,gyro_x,gyro_y,gyro_z,accl_x,accl_y,accl_z"
    ]
    for i, ms in enumerate(t):
        canon = "" if i in (3, 4) else f"{ms}"  # empty canonical cells are dropped
        lines.append(f"0,{ms},{canon},{ms / 1000},0,0,1,2,{np.sin(ms / 1000)}")
    touch(v2 / "imu/0ce20f1b-104c.csv", "\n".join(lines).encode())
    ds = R.read_ego4d(tmp_path)
    assert [it.window for it in ds.items] == [(0.0, 5.0), (5.0, 10.0)]  # 12 s -> two whole 5-s windows
    assert ds.class_names == ["Cooking"] and ds.labels == [0, 0]
    assert ds.excluded == {"videos without exactly one scenario": 1} and len(ds.missing) == 1
    x = load_items("imu", ds.items, model=None)  # windows cut here, resampled by bindkit.data.load_imu
    grid = np.array([0.0, 5.0])[:, None] + np.arange(2000) * 5.0 / 2000
    assert x.shape == (2, 6, 2000)
    np.testing.assert_allclose(x[:, 0], 1.0, atol=1e-6)  # accelerometer x first
    np.testing.assert_allclose(x[:, 2], np.sin(grid), atol=1e-4)
    np.testing.assert_allclose(x[:, 3], grid, atol=1e-4)  # gyro x = time in s, linearly interpolated
    late = R.Item(ds.items[0].path, window=(20.0, 25.0))
    with pytest.raises(LoadError, match="cover under half of the window 20.0-25.0"):
        load_items("imu", [late], model=None)
    res = load_items("imu", [late, ds.items[1]], model=None, errors="skip")
    assert res.tensor.shape == (1, 6, 2000) and [s.index for s in res.skipped] == [0]


def test_msrvtt(tmp_path):
    touch(tmp_path / "msrvtt_data/MSRVTT_JSFUSION_test.csv",
          b"key,vid_key,video_id,sentence\nret0,msr7010,video7010,a person is cooking\nret1,msr9770,video9770,x\n")  # fmt: skip
    touch(tmp_path / "MSRVTT/videos/all/video7010.mp4")
    ds = R.read_msrvtt(tmp_path)
    assert ds.captions == [["a person is cooking"]] and ds.modality == "video" and len(ds.missing) == 1
    assert R.read_msrvtt(tmp_path, modality="audio").modality == "audio"


def test_generic_folder_csv_and_splits(tmp_path):
    for split in ("train", "test"):
        for c in ("cat_sound", "dog"):
            touch(tmp_path / "a" / split / c / "x.wav")
    ds = R.read_folder(tmp_path / "a")
    assert ds.modality == "audio" and ds.class_names == ["cat_sound", "dog"]
    assert ds.prompt_names == [["cat sound"], ["dog"]] and ds.splits == ["train", "train", "test", "test"]
    touch(tmp_path / "b/c1/a.png")
    touch(tmp_path / "b/c2/b.png")
    assert R.read_folder(tmp_path / "b").modality == "vision"
    assert R.read_folder(tmp_path / "b", modality="depth").modality == "depth"
    touch(tmp_path / "c/c1/a.csv")
    with pytest.raises(ValueError, match="pass modality="):
        R.read_folder(tmp_path / "c")
    touch(tmp_path / "d/labels.csv", b"file,label\nx/1.jpg,cat\ny/2.jpg,dog\nx/3.jpg,cat\n")
    touch(tmp_path / "d/x/1.jpg"), touch(tmp_path / "d/y/2.jpg"), touch(tmp_path / "d/x/3.jpg")
    ds = R.read_labels_csv(tmp_path / "d/labels.csv", class_names=[["a cat"], ["a dog"]])
    assert ds.labels == [0, 1, 0] and ds.prompt_names == [["a cat"], ["a dog"]]
    with pytest.raises(ValueError, match="3 class names given for 2 classes"):
        R.read_labels_csv(tmp_path / "d/labels.csv", class_names=[["a"], ["b"], ["c"]])
