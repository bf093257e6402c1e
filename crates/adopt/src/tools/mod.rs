//! One reader per tool's history table (each as the tool creates and fills it).

pub(crate) mod alembic;
pub(crate) mod diesel;
pub(crate) mod flyway;
pub(crate) mod goose;
pub(crate) mod knex;
pub(crate) mod prisma;
pub(crate) mod schema_migrations;
pub(crate) mod sequelize;
pub(crate) mod sqitch;
pub(crate) mod typeorm;
