"""The gallery's SQL schema, as numbered migrations: MIGRATIONS[n] takes a gallery from version n to n + 1.

Statements are separated by ';' (run one by one inside the migration's transaction, so no ';'
in comments or strings). A change to the schema is a new entry at the end, never an edit of an old one, so every
gallery ever written can be brought up to date in place (in one transaction).
"""

MIGRATIONS = [
    # 0 -> 1: people, their faces (with embeddings), the gallery's model
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE people (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL
    );
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY,
        person INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        photo TEXT NOT NULL,          -- the source photo, as given when enrolling
        face INTEGER NOT NULL,        -- its number in the photo, left to right from 0
        x1 REAL, y1 REAL, x2 REAL, y2 REAL,  -- the box in the photo (NULL: unknown)
        score REAL,                   -- detector confidence (NULL: unknown)
        source TEXT NOT NULL,         -- photo, folder, cluster or import
        embedding BLOB NOT NULL,      -- float32, little-endian, the gallery model's dimension
        added TEXT NOT NULL
    );
    CREATE INDEX faces_person ON faces(person);
    """,
    # 1 -> 2: a small JPEG of each face, for people to look at (the browser UI, `fnet people show`)
    """
    ALTER TABLE faces ADD COLUMN thumbnail BLOB
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
