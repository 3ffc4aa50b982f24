//! The Redis store. Filled in by the Redis issue.
