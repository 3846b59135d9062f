"""CAR files: export a DAG, import one, verify one (CARv1, and CARv2 with a go-car index)."""

from ipldwrite.car._export import CarReport, CarSummary, export_car, import_car, verify_car

__all__ = ["CarReport", "CarSummary", "export_car", "import_car", "verify_car"]
