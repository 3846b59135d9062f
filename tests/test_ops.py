"""Dataset algebra by CID: results are canonical, chunk data is never touched."""

from __future__ import annotations

import itertools
import random
from typing import Any

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from datasets import climate_cube
from ipldwrite import ops
from ipldwrite.blockstore import CountingBlockstore, MemoryBlockstore
from ipldwrite.dag import ArrayNode, DatasetReader, NodeIO, iter_entries
from ipldwrite.errors import IncompatibleDatasetsError, MergeConflictError
from ipldwrite.ipld import to_link
from ipldwrite.store import IPLDStore
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr

UNITS = "days since 2000-01-01"


def encoding_for(ds: xr.Dataset, rows: int, *, units: str | None = UNITS) -> dict[str, Any]:
    enc: dict[str, Any] = {
        str(v): {"chunks": (rows, *ds[v].shape[1:])}
        for v in ds.data_vars
        if ds[v].dims[:1] == ("time",)
    }
    enc["time"] = {"chunks": (rows,), **({"units": units} if units else {})}
    return enc


def data_chunk_links(store: MemoryBlockstore, root: Any) -> set[bytes]:
    """The chunk links of every data variable (not the coordinates)."""
    reader = DatasetReader(store, to_link(root))
    ds = open_ipld_zarr(root, store)
    links = set()
    for path, node in reader.walk():
        if isinstance(node, ArrayNode) and path in ds.data_vars:
            entries = iter_entries(NodeIO(store), node.tiling, node.manifest)
            links |= {link.cid_bytes for _, link in entries}
    return links


@pytest.fixture
def store() -> CountingBlockstore:
    return CountingBlockstore(MemoryBlockstore())


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(0, 2**32))
def test_concat_of_any_aligned_split_equals_the_direct_write(
    rows: int, parts: int, seed: int
) -> None:
    store = MemoryBlockstore()
    full = climate_cube(rows * 6, 4, 5, seed=seed % 5)
    enc = encoding_for(full, rows)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, 6), min(parts - 1, 5)))
    bounds = [0, *(c * rows for c in cuts), rows * 6]
    pieces = [
        to_ipld_zarr(full.isel(time=slice(a, b)), store, encoding=enc)
        for a, b in itertools.pairwise(bounds)
    ]
    assert ops.concat(pieces, "time", store) == to_ipld_zarr(full, store, encoding=enc)


def test_concat_touches_no_chunk_block(store: CountingBlockstore) -> None:
    full = climate_cube(24, 6, 8)
    enc = encoding_for(full, 4)
    a = to_ipld_zarr(full.isel(time=slice(0, 12)), store, encoding=enc)
    b = to_ipld_zarr(full.isel(time=slice(12, 24)), store, encoding=enc)
    direct = to_ipld_zarr(full, store, encoding=enc)
    store.reset()
    assert ops.concat([a, b], "time", store, check_coords=False) == direct
    assert store.reads["chunk"] == 0
    assert store.writes["chunk"] == 0
    # With the (default) coordinate checks only the small time coordinate is read.
    store.reset()
    assert ops.concat([a, b], "time", store) == direct
    assert store.writes["chunk"] == 0
    assert not store.read_links & data_chunk_links(store.inner, direct)  # type: ignore[arg-type]
    xr.testing.assert_identical(open_ipld_zarr(direct, store).load(), full)


def test_concat_harmonises_time_units_like_a_direct_write(store: CountingBlockstore) -> None:
    """Years written independently get different CF units from xarray; concat re-encodes
    the (small) time coordinate in the first input's units, never the data."""
    full = climate_cube(24, 6, 8)
    enc = encoding_for(full, 4, units=None)
    a = to_ipld_zarr(full.isel(time=slice(0, 12)), store, encoding=enc)
    b = to_ipld_zarr(full.isel(time=slice(12, 24)), store, encoding=enc)
    store.reset()
    joined = ops.concat([a, b], "time", store)
    assert joined == to_ipld_zarr(full, store, encoding=enc)
    assert not store.read_links & data_chunk_links(store.inner, joined)  # type: ignore[arg-type]


def test_untouched_manifest_subtrees_are_shared_by_cid() -> None:
    store = MemoryBlockstore()
    t = 4096  # one full manifest leaf per input
    ds = xr.Dataset({"v": (("time",), np.arange(2 * t, dtype="int32"))})
    # time chunked below zarr's automatic chunking: an index coordinate that every input
    # holds as one automatic chunk is taken as numpy-backed (docs/spec.md, canonical chunking)
    enc = {"v": {"chunks": (1,)}, "time": {"chunks": (t // 4,)}}
    ds = ds.assign_coords(time=np.arange(2 * t))
    a = to_ipld_zarr(ds.isel(time=slice(0, t)), store, encoding=enc)
    b = to_ipld_zarr(ds.isel(time=slice(t, 2 * t)), store, encoding=enc)
    joined = ops.concat([a, b], "time", store, check_coords=False)

    def manifest(root: Any) -> ArrayNode:
        node = DatasetReader(store, to_link(root)).node("v")
        assert isinstance(node, ArrayNode)
        return node

    joined_v = manifest(joined)
    assert joined_v.manifest is not None
    top = NodeIO(store).read(joined_v.manifest, joined_v.tiling.node_length(1, (0,)))
    # The inputs' whole manifests (one full leaf each) are the result's leaves, by link.
    assert top == [manifest(a).manifest, manifest(b).manifest]
    assert joined == to_ipld_zarr(ds, store, encoding=enc)


def test_refusals_say_what_differs_and_what_to_do() -> None:
    store = MemoryBlockstore()
    full = climate_cube(24, 6, 8)
    enc = encoding_for(full, 10)
    a = to_ipld_zarr(full.isel(time=slice(0, 11)), store, encoding=enc)
    b = to_ipld_zarr(full.isel(time=slice(11, 24)), store, encoding=enc)
    with pytest.raises(
        IncompatibleDatasetsError,
        match=(
            r"dataset 1 has 11 time steps with chunk size 10 in variable '\w+': not "
            r"chunk-aligned; rechunk the inputs to a divisor of 11"
        ),
    ):
        ops.concat([a, b], "time", store)
    enc4 = encoding_for(full, 4)
    a = to_ipld_zarr(full.isel(time=slice(0, 12)), store, encoding=enc4)
    b = to_ipld_zarr(full.isel(time=slice(12, 24)), store, encoding=enc4)
    with pytest.raises(IncompatibleDatasetsError, match="overlaps or is out of order"):
        ops.concat([b, a], "time", store)
    with pytest.raises(IncompatibleDatasetsError, match="overlaps or is out of order"):
        ops.concat([a, a], "time", store)
    extra = to_ipld_zarr(
        full.isel(time=slice(12, 24)).drop_vars("wind"),
        store,
        encoding={k: v for k, v in enc4.items() if k != "wind"},
    )
    with pytest.raises(IncompatibleDatasetsError, match=r"variables \['wind'\]"):
        ops.concat([a, extra], "time", store)
    other_grid = to_ipld_zarr(
        climate_cube(12, 6, 9, start="2000-01-13"),
        store,
        encoding=encoding_for(climate_cube(12, 6, 9), 4),
    )
    with pytest.raises(
        IncompatibleDatasetsError, match=r"has no 'time' dimension and differs|'lon' has 9 entries"
    ):
        ops.concat([a, other_grid], "time", store)
    kelvin = full.isel(time=slice(12, 24))
    kelvin["t2m"].attrs["units"] = "degC"
    c = to_ipld_zarr(kelvin, store, encoding=enc4)
    with pytest.raises(IncompatibleDatasetsError, match="'units' is 'K' in input 1 but 'degC'"):
        ops.concat([a, c], "time", store)
    second = full.isel(time=slice(12, 24))
    as_double = second.assign(t2m=second["t2m"].astype("float64"))
    d = to_ipld_zarr(as_double, store, encoding=enc4)
    with pytest.raises(IncompatibleDatasetsError, match="data_type differs"):
        ops.concat([a, d], "time", store)


def test_combine_attrs_policies() -> None:
    store = MemoryBlockstore()
    full = climate_cube(8, 4, 5)
    enc = encoding_for(full, 4)
    a = to_ipld_zarr(full.isel(time=slice(0, 4)).assign_attrs(run="a"), store, encoding=enc)
    b = to_ipld_zarr(full.isel(time=slice(4, 8)).assign_attrs(run="b"), store, encoding=enc)
    assert open_ipld_zarr(ops.concat([a, b], "time", store), store).attrs["run"] == "a"
    dropped = ops.concat([a, b], "time", store, combine_attrs="drop_conflicts")
    assert "run" not in open_ipld_zarr(dropped, store).attrs
    with pytest.raises(IncompatibleDatasetsError, match="attribute 'run' is 'a'"):
        ops.concat([a, b], "time", store, combine_attrs="no_conflicts")
    with pytest.raises(IncompatibleDatasetsError, match="combine_attrs='identical'"):
        ops.concat([a, b], "time", store, combine_attrs="identical")
    assert (
        open_ipld_zarr(ops.concat([a, b], "time", store, combine_attrs="drop"), store).attrs == {}
    )


def test_merge_is_order_independent_and_metadata_only(store: CountingBlockstore) -> None:
    full = climate_cube(8, 4, 5)
    enc = encoding_for(full, 4)
    parts = [
        to_ipld_zarr(full[[v]], store, encoding={k: e for k, e in enc.items() if k in (v, "time")})
        for v in ("t2m", "precip", "wind")
    ]
    store.reset()
    results = {ops.merge(list(p), store) for p in itertools.permutations(parts)}
    assert len(results) == 1
    assert store.reads["chunk"] == store.writes["chunk"] == 0
    expected = full[["t2m", "precip", "wind"]]
    xr.testing.assert_identical(open_ipld_zarr(results.pop(), store).load(), expected)
    only_t2m = {k: e for k, e in enc.items() if k in ("t2m", "time")}
    clash = to_ipld_zarr(full[["t2m"]].assign(t2m=full["t2m"] + 1), store, encoding=only_t2m)
    with pytest.raises(MergeConflictError, match="'/t2m' differs between the inputs"):
        ops.merge([parts[0], clash], store)


def test_append_a_cid_or_an_xarray_dataset(store: CountingBlockstore) -> None:
    full = climate_cube(12, 4, 5)
    enc = encoding_for(full, 4)
    base = to_ipld_zarr(full.isel(time=slice(0, 8)), store, encoding=enc)
    tail = to_ipld_zarr(full.isel(time=slice(8, 12)), store, encoding=enc)
    direct = to_ipld_zarr(full, store, encoding=enc)
    assert ops.append(base, tail, "time", store) == direct
    # With an in-memory (or Dask) dataset, the writer appends on top of the base.
    appended = ops.append(base, full.isel(time=slice(8, 12)).chunk({"time": 4}), "time", store)
    xr.testing.assert_identical(open_ipld_zarr(appended, store).load(), full)
    assert appended == direct


def test_append_one_step_to_a_long_array_writes_a_path(store: CountingBlockstore) -> None:
    n = 4096 * 2  # two full manifest leaves of one-step chunks
    ds = xr.Dataset(
        {"v": (("time",), np.arange(n + 1, dtype="int32"))}, coords={"time": np.arange(n + 1)}
    )
    enc = {"v": {"chunks": (1,)}, "time": {"chunks": (1,)}}
    base = to_ipld_zarr(ds.isel(time=slice(0, n)), store, encoding=enc)
    step = to_ipld_zarr(ds.isel(time=slice(n, n + 1)), store, encoding=enc)
    store.reset()
    ops.append(base, step, "time", store, check_coords=False)
    assert store.writes["chunk"] == 0
    # Per array (v and time): a new leaf and a new root of its manifest, and the array
    # node; plus the root group. Not the manifest's 8192 entries.
    assert store.writes["node"] <= 7


def test_isel_subsets_by_manifest(store: CountingBlockstore) -> None:
    full = climate_cube(24, 6, 8)
    enc = encoding_for(full, 4)
    root = to_ipld_zarr(full, store, encoding=enc)
    store.reset()
    sub = ops.isel(root, {"time": slice(8, 20)}, store)
    assert store.reads["chunk"] == store.writes["chunk"] == 0
    assert sub == to_ipld_zarr(full.isel(time=slice(8, 20)), store, encoding=enc)
    to_end = ops.isel(root, {"time": slice(20, None)}, store)
    xr.testing.assert_identical(
        open_ipld_zarr(to_end, store).load(), full.isel(time=slice(20, None))
    )
    with pytest.raises(IncompatibleDatasetsError, match="does not fall on chunk boundaries"):
        ops.isel(root, {"time": slice(1, 8)}, store)
    # A small single-chunk coordinate is re-written; the data variables stay linked.
    by_lat = {k: {"chunks": (4, 3, 8)} for k in ("t2m", "precip")}
    spatial = full[["t2m", "precip"]]
    root = to_ipld_zarr(spatial, store, encoding=by_lat)
    store.reset()
    half = ops.isel(root, {"lat": slice(0, 3)}, store)
    assert store.writes["chunk"] == 1  # the new 'lat' coordinate chunk, nothing else
    assert not store.read_links & data_chunk_links(store.inner, root)  # type: ignore[arg-type]
    # The numpy-backed lat gets zarr's automatic chunking for its new shape, as a single
    # write of the subset gives it (docs/spec.md, canonical chunking).
    expected = to_ipld_zarr(spatial.isel(lat=slice(0, 3)), store, encoding=by_lat)
    assert half == expected


def test_rename_drop_and_attributes() -> None:
    store = MemoryBlockstore()
    full = climate_cube(8, 4, 5).assign_coords(height=(("lat", "lon"), np.ones((4, 5))))
    root = to_ipld_zarr(full, store)
    renamed = open_ipld_zarr(ops.rename(root, {"t2m": "tas", "lat": "latitude"}, store), store)
    xr.testing.assert_identical(renamed.load(), full.rename({"t2m": "tas", "lat": "latitude"}))
    dropped = open_ipld_zarr(ops.drop_vars(root, ["height", "wind"], store), store)
    xr.testing.assert_identical(dropped.load(), full.drop_vars(["height", "wind"]))
    with pytest.raises(ValueError, match="no such variable"):
        ops.drop_vars(root, ["nope"], store)
    with pytest.raises(IncompatibleDatasetsError, match="it exists"):
        ops.rename(root, {"t2m": "precip"}, store)
    tagged = ops.assign_attrs(root, {"license": "CC-BY-4.0", "title": None}, store)
    attrs = open_ipld_zarr(tagged, store).attrs
    assert attrs["license"] == "CC-BY-4.0"
    assert "title" not in attrs
    var = ops.assign_attrs(root, {"units": "kelvin"}, store, variable="t2m")
    assert open_ipld_zarr(var, store)["t2m"].attrs["units"] == "kelvin"


def test_regroup_and_move_rearrange_the_hierarchy() -> None:
    store = MemoryBlockstore()
    era = climate_cube(4, 3, 4, seed=1)
    cmip = climate_cube(4, 3, 4, seed=2)
    era_root, cmip_root = to_ipld_zarr(era, store), to_ipld_zarr(cmip, store)
    both = ops.regroup({"era": era_root, "cmip": cmip_root}, store, attrs={"collection": "demo"})
    xr.testing.assert_identical(open_ipld_zarr(both, store, group="era").load(), era)
    tree = xr.open_datatree(
        IPLDStore(store, both),
        engine="zarr",
        consolidated=False,
        zarr_format=3,
    )
    assert set(tree.children) == {"era", "cmip"}
    assert tree.attrs == {"collection": "demo"}
    # The datasets are linked as they are: their root nodes are the groups' nodes.
    assert DatasetReader(store, to_link(both)).node("").members["era"] == to_link(era_root)  # type: ignore[union-attr]
    moved = ops.move(both, "cmip", "models/cmip6", store)
    xr.testing.assert_identical(open_ipld_zarr(moved, store, group="models/cmip6").load(), cmip)
    with pytest.raises(ValueError, match="already exists"):
        ops.move(moved, "era", "models/cmip6", store)
