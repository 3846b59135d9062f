"""``open_ipld_zarr`` takes xarray's ``open_zarr`` arguments by name, and a path after the CID
opens that group or is refused: it is never ignored."""

from __future__ import annotations

import pytest
import xarray as xr

from datasets import climate_cube
from ipldwrite import to_ipld_zarr
from ipldwrite.ops import regroup
from ipldwrite.xarray import open_ipld_datatree, open_ipld_zarr


@pytest.fixture(scope="module")
def nested(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, xr.Dataset]:
    blocks = str(tmp_path_factory.mktemp("open") / "blocks")
    cube = climate_cube(4, 3, 5)
    inner = to_ipld_zarr(cube, blocks)
    return str(regroup({"ocean": str(inner)}, blocks)), blocks, cube


def test_fixed_arguments_are_accepted_with_their_value(nested: tuple[str, str, xr.Dataset]) -> None:
    root, blocks, cube = nested
    ds = open_ipld_zarr(root, blocks, group="ocean", consolidated=False, zarr_format=3)
    xr.testing.assert_identical(ds.compute(), cube)
    assert open_ipld_zarr(root, blocks, group="ocean", chunks=None).t2m.chunks is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"consolidated": True}, ValueError, "consolidated can only be False"),
        ({"zarr_format": 2}, ValueError, "zarr_format can only be 3"),
        ({"storage_options": {}}, TypeError, "does not take storage_options="),
        ({"chunk_store": {}}, TypeError, "does not take chunk_store="),
        ({"no_such_argument": 1}, TypeError, "no_such_argument"),
    ],
)
def test_other_arguments_are_refused_by_name(
    nested: tuple[str, str, xr.Dataset], kwargs: dict[str, object], error: type, message: str
) -> None:
    root, blocks, _ = nested
    with pytest.raises(error, match=message):
        open_ipld_zarr(root, blocks, group="ocean", **kwargs)


@pytest.mark.parametrize("spelling", ["{root}/ocean", "ipfs://{root}/ocean/", "/ipfs/{root}/ocean"])
def test_a_path_after_the_cid_opens_that_group(
    nested: tuple[str, str, xr.Dataset], spelling: str
) -> None:
    root, blocks, cube = nested
    xr.testing.assert_identical(open_ipld_zarr(spelling.format(root=root), blocks).compute(), cube)
    engine = xr.open_dataset(spelling.format(root=root), engine="ipld", blockstore=blocks)
    xr.testing.assert_identical(engine.compute(), cube)


def test_a_path_to_an_array_or_nowhere_is_refused(nested: tuple[str, str, xr.Dataset]) -> None:
    root, blocks, _ = nested
    with pytest.raises(ValueError, match=r"'ocean/t2m' .* is an array, not a group") as info:
        open_ipld_zarr(f"{root}/ocean/t2m", blocks)
    assert f"open_ipld_zarr('{root}/ocean')['t2m']" in str(info.value)
    with pytest.raises(ValueError, match="'land' is not a group of"):
        open_ipld_zarr(f"{root}/land", blocks)
    with pytest.raises(ValueError, match="'land' is not a group of"):
        open_ipld_datatree(f"{root}/land", blocks)
