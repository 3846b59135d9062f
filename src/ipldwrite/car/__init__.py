"""CAR files: export a DAG (whole, or sharded over bounded CARv2 files), import one, verify
one, pack a per-task-CAR write into shards."""

from ipldwrite.car._export import CarReport, CarSummary, export_car, import_car, verify_car
from ipldwrite.car._pack import PackSummary, pack_car_directory
from ipldwrite.car._shards import DEFAULT_SHARD_BYTES, ShardSummary, car_cid, export_car_shards

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "CarReport",
    "CarSummary",
    "PackSummary",
    "ShardSummary",
    "car_cid",
    "export_car",
    "export_car_shards",
    "import_car",
    "pack_car_directory",
    "verify_car",
]
