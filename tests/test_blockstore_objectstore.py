"""ObjectStoreBlockstore: the blockstore conformance suite on a real S3 server (moto, on
loopback) and on local files, plus what is specific to object storage."""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path

import pytest

from blockstore_conformance import BlockstoreTests, sample_blocks
from ipldwrite.blockstore import Blockstore, ObjectStoreBlockstore, resolve_blockstore
from ipldwrite.ipld import Link, compute_link, link_str
from s3_server import BUCKETS, S3Server

pytest.importorskip("obstore")


def _bucket_url() -> str:
    return f"s3://{BUCKETS[0]}/{uuid.uuid4().hex}"  # a fresh prefix per store


class TestS3Blockstore(BlockstoreTests):
    @pytest.fixture(autouse=True)
    def _server(self, s3_server: S3Server) -> None:
        self.server = s3_server

    def make(self, tmp_path: Path, blocks: dict[Link, bytes], **kwargs: object) -> Blockstore:
        store = ObjectStoreBlockstore(
            _bucket_url(),
            **self.server.obstore_options(),
            **kwargs,  # type: ignore[arg-type]
        )
        store.put_many(blocks.items())
        return store

    def corrupt(self, store: Blockstore, link: Link) -> None:
        import obstore

        assert isinstance(store, ObjectStoreBlockstore)
        obstore.put(store.store, store.key(link), b"tampered")  # overwrite: a bad actor


class TestLocalFilesBlockstore(BlockstoreTests):
    def make(self, tmp_path: Path, blocks: dict[Link, bytes], **kwargs: object) -> Blockstore:
        store = ObjectStoreBlockstore(f"file://{tmp_path}/objects", **kwargs)  # type: ignore[arg-type]
        store.put_many(blocks.items())
        return store

    def corrupt(self, store: Blockstore, link: Link) -> None:
        assert isinstance(store, ObjectStoreBlockstore)
        Path(store.url[len("file://") :], store.key(link)).write_bytes(b"tampered")


def test_s3_urls_resolve_to_object_storage(s3_server: S3Server) -> None:
    store = resolve_blockstore(_bucket_url(), **s3_server.obstore_options())
    assert isinstance(store, ObjectStoreBlockstore)
    assert store.shared_between_processes


def test_existing_blocks_are_never_rewritten(s3_server: S3Server) -> None:
    import obstore

    store = ObjectStoreBlockstore(_bucket_url(), **s3_server.obstore_options())
    link = store.put(b"payload")
    first = obstore.head(store.store, store.key(link))
    before = s3_server.requests
    store.put(b"payload")  # one conditional put, refused by the server: nothing written
    assert s3_server.requests - before == 1
    assert obstore.head(store.store, store.key(link))["e_tag"] == first["e_tag"]


def test_keys_are_sharded_cid_strings(s3_server: S3Server) -> None:
    import obstore

    store = ObjectStoreBlockstore(_bucket_url(), **s3_server.obstore_options())
    link = store.put(b"sharded")
    name = link_str(link)
    assert store.key(link) == f"{name[-3:-1]}/{name}"
    assert obstore.get(store.store, store.key(link)).bytes() == b"sharded"


def test_task_batch_uploads_when_the_task_finishes(s3_server: S3Server) -> None:
    store = ObjectStoreBlockstore(_bucket_url(), **s3_server.obstore_options())
    task = store.open_task()
    blocks = sample_blocks()
    for link, data in blocks.items():
        task.put_block(link, data)
        assert task.get(link) == data  # the task reads what it wrote before the upload
    assert not any(store.has_many(list(blocks)))
    store.finish_task(task, next(iter(blocks)))
    assert all(store.has_many(list(blocks)))


def test_pickles_without_the_client(s3_server: S3Server) -> None:
    store = ObjectStoreBlockstore(_bucket_url(), **s3_server.obstore_options())
    link = store.put(b"travels")
    clone = pickle.loads(pickle.dumps(store))
    assert clone._obstore is None  # rebuilt in the process that unpickles it
    assert clone.get(link) == b"travels"


def test_memory_urls_are_not_shared_between_processes() -> None:
    store = ObjectStoreBlockstore("memory://")
    assert not store.shared_between_processes
    assert store.get(store.put(b"x")) == b"x"


def test_missing_block_over_s3_is_blocknotfound(s3_server: S3Server) -> None:
    from ipldwrite.errors import BlockNotFoundError

    store = ObjectStoreBlockstore(_bucket_url(), **s3_server.obstore_options())
    with pytest.raises(BlockNotFoundError) as info:
        store.get(compute_link(b"absent"))
    assert info.value.cid == compute_link(b"absent")
