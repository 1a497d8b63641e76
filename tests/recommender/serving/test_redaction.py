"""Public error text names files relative to the configured roots and leaks no absolute path."""

from __future__ import annotations

from pathlib import Path

from recommender.serving.redaction import public_message

ROOTS = {"processed_dir": "/srv/shop/data/processed", "registry_dir": "/srv/shop/artifacts/cf"}


def test_roots_become_their_config_key():
    message = (
        "/srv/shop/artifacts/cf/registry.json names current model 'm9', which is not among its "
        "models; /srv/shop/data/processed has data dv2"
    )
    assert public_message(message, ROOTS) == (
        "<registry_dir>/registry.json names current model 'm9', which is not among its "
        "models; <processed_dir> has data dv2"
    )


def test_a_root_at_the_end_of_a_sentence():
    message = "no current model in the registry at /srv/shop/artifacts/cf. Run build."
    assert public_message(message, ROOTS) == (
        "no current model in the registry at <registry_dir>. Run build."
    )


def test_relative_and_resolved_roots_are_both_replaced(tmp_path: Path, monkeypatch):
    (tmp_path / "data" / "processed").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    roots = {"processed_dir": "data/processed"}
    message = f"{tmp_path}/data/processed/products.parquet and data/processed/x.json"
    assert public_message(message, roots) == (
        "<processed_dir>/products.parquet and <processed_dir>/x.json"
    )


def test_other_absolute_paths_keep_only_their_name():
    message = "OSError: [Errno 28] No space left on device: '/var/tmp/recsys/cache/a.npy'"
    assert public_message(message, ROOTS) == (
        "OSError: [Errno 28] No space left on device: '…/a.npy'"
    )


def test_text_without_paths_is_unchanged():
    message = "checksum mismatch for m2 (see https://example.vn/docs); topk/users 3/4"
    assert public_message(message, ROOTS) == message


def test_a_root_is_not_replaced_inside_a_longer_name():
    message = "/srv/shop/artifacts/cf2/registry.json"
    assert public_message(message, ROOTS) == "…/registry.json"
