package postgres

// MigrationLock is migrate's advisory lock key, for the tests that play a
// replica dying while it holds it.
const MigrationLock = migrationLock
