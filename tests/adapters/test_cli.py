"""The ``convert`` and ``adapter`` commands, driven through ``gateway.cli.main``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gateway.adapter import load_adapter
from gateway.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "samples"
PAIRS = [
    (source, target)
    for source in ("tongliang", "suining", "canonical")
    for target in ("tongliang", "suining", "canonical")
]
INPUTS = {
    "tongliang": SAMPLES / "tongliang" / "referrals_and_feedback.json",
    "suining": SAMPLES / "suining" / "mixed_gb18030.xml",
}
HEADER = ["--sender", "500151", "--batch-id", "TL1", "--sent-at", "2026-11-27T10:00:00"]


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_convert_every_pair(source: str, target: str, tmp_path: Path) -> None:
    if source == "canonical":
        start = tmp_path / "start.json"
        assert (
            main(
                [
                    "convert",
                    "--from",
                    "suining",
                    "--to",
                    "canonical",
                    str(INPUTS["suining"]),
                    str(start),
                ]
            )
            == 0
        )
        expected = load_adapter("suining").decode(INPUTS["suining"].read_bytes()).records
    else:
        start = INPUTS[source]
        expected = load_adapter(source).decode(start.read_bytes()).records
    output = tmp_path / f"out{load_adapter(target).file_suffix}"
    assert (
        main(["convert", "--from", source, "--to", target, str(start), str(output), *HEADER]) == 0
    )
    assert load_adapter(target).decode(output.read_bytes()).records == expected


def test_convert_writes_the_header_options(tmp_path: Path) -> None:
    output = tmp_path / "out.xml"
    assert (
        main(
            [
                "convert",
                "--from",
                "tongliang",
                "--to",
                "suining",
                str(INPUTS["tongliang"]),
                str(output),
                *HEADER,
            ]
        )
        == 0
    )
    batch = load_adapter("suining").decode(output.read_bytes())
    assert (batch.batch_id, batch.sender_bureau, str(batch.sent_at)) == (
        "TL1",
        "500151",
        "2026-11-27 10:00:00+08:00",
    )


def test_convert_defaults_the_sender_to_the_source_bureau(tmp_path: Path) -> None:
    output = tmp_path / "out.xml"
    assert (
        main(
            [
                "convert",
                "--from",
                "tongliang",
                "--to",
                "suining",
                str(INPUTS["tongliang"]),
                str(output),
            ]
        )
        == 0
    )
    batch = load_adapter("suining").decode(output.read_bytes())
    assert batch.sender_bureau == "500151"
    assert batch.batch_id is not None and batch.batch_id.startswith("CY")


def _refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], data: bytes, suffix: str
) -> str:
    source = tmp_path / f"in{suffix}"
    source.write_bytes(data)
    output = tmp_path / "out.any"
    status = main(["convert", *args, str(source), str(output)])
    assert status != 0
    assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]  # no temporary left
    return capsys.readouterr().err


def test_convert_refuses_a_bad_uscc(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = (
        (SAMPLES / "tongliang" / "spec_example.json")
        .read_bytes()
        .replace(b"92510903MA6AB7Q52D", b"92510903MA6AB7Q52E")
    )
    err = _refused(capsys, tmp_path, ["--from", "tongliang", "--to", "suining"], data, ".json")
    assert err.startswith("chuanyu-gateway: tongliang file refused (1 problem): ")
    for part in (
        "record #2 (消费投诉 TS5001512026112700001)",
        "field 被投诉人.统一社会信用代码 [respondent.uscc]",
        "GB 32100 check character is 'E', expected 'D'",
        "(value 92510903MA6AB7Q52E)",
        "(rule uscc.check_char)",
        "[LOCAL_FILE_INVALID]",
    ):
        assert part in err
    assert len(err.splitlines()) == 1


def test_convert_refuses_a_count_mismatch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = (
        (SAMPLES / "suining" / "spec_example.xml")
        .read_bytes()
        .replace(b"<JLS>2</JLS>", b"<JLS>3</JLS>")
    )
    err = _refused(capsys, tmp_path, ["--from", "suining", "--to", "tongliang"], data, ".xml")
    assert "field BWT/JLS: JLS says 3 records but BWTI holds 2 (rule batch.count_mismatch)" in err


def test_convert_refuses_an_entity_bomb(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    entities = "".join(f'<!ENTITY e{n} "{("&e" + str(n - 1) + ";") * 10}">' for n in range(1, 12))
    bomb = (
        '<?xml version="1.0" encoding="GB18030"?>\n'
        f'<!DOCTYPE SJBW [<!ENTITY e0 "ha">{entities}]>\n<SJBW>&e11;</SJBW>'
    )
    started = time.monotonic()
    err = _refused(
        capsys, tmp_path, ["--from", "suining", "--to", "canonical"], bomb.encode(), ".xml"
    )
    assert time.monotonic() - started < 1.0
    assert (
        "a DOCTYPE (and with it any entity declaration) is refused outright (rule xml.doctype)"
        in err
    )


def test_convert_leaves_an_existing_output_untouched(tmp_path: Path) -> None:
    output = tmp_path / "out.json"
    output.write_bytes(b"previous")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"[1]")
    assert main(["convert", "--from", "tongliang", "--to", "canonical", str(bad), str(output)]) == 1
    assert output.read_bytes() == b"previous"


def test_convert_names_available_adapters_for_an_unknown_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status = main(
        [
            "convert",
            "--from",
            "yubei",
            "--to",
            "tongliang",
            str(INPUTS["tongliang"]),
            str(tmp_path / "o"),
        ]
    )
    assert status == 1
    err = capsys.readouterr().err
    assert "no adapter named 'yubei'; installed: canonical" in err
    assert "suining" in err and "tongliang" in err


def test_convert_reports_an_unreadable_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status = main(
        [
            "convert",
            "--from",
            "tongliang",
            "--to",
            "suining",
            str(tmp_path / "none.json"),
            str(tmp_path / "o"),
        ]
    )
    assert status == 1
    assert "cannot read" in capsys.readouterr().err


def test_canonical_without_sender_cannot_become_suining(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    canonical = tmp_path / "c.json"
    canonical.write_bytes(
        (Path(__file__).parent / "golden" / "tongliang" / "spec_example.json").read_bytes()
    )
    status = main(
        [
            "convert",
            "--from",
            "canonical",
            "--to",
            "suining",
            str(canonical),
            str(tmp_path / "o.xml"),
        ]
    )
    assert status == 1
    assert "FSDW (sender bureau)" in capsys.readouterr().err


def test_canonical_input_errors_name_record_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    records = json.loads(
        (Path(__file__).parent / "golden" / "tongliang" / "spec_example.json").read_text("utf-8")
    )
    records[0]["legal_representative_id_number"] = "110105194912310021"
    data = json.dumps(records, ensure_ascii=False).encode()
    err = _refused(capsys, tmp_path, ["--from", "canonical", "--to", "tongliang"], data, ".json")
    assert "record #1 (business_registration 91500151MA60K3C286)" in err
    assert "field legal_representative_id_number" in err
    assert "110105194912310021" not in err


def test_adapter_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapter", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split()[0]: line for line in lines}
    assert {"canonical", "suining", "tongliang"} <= set(by_name)
    assert "gb18030" in by_name["suining"] and "510900" in by_name["suining"]
    assert ".json" in by_name["tongliang"] and "500151" in by_name["tongliang"]
