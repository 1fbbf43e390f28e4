from alembic import context
from sqlalchemy import create_engine, pool

from geodata.models import Base

config = context.config
target_metadata = Base.metadata

# PostGIS owns these tables; never autogenerate drops for them.
_POSTGIS_TABLES = {"spatial_ref_sys", "layer", "topology"}


def include_object(obj, name, type_, reflected, compare_to):
    return not (type_ == "table" and name in _POSTGIS_TABLES)


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          include_object=include_object, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
