"""Storage: SQLModel tables, engines and sessions, and Alembic migrations."""
