//! The embedded default store (redb). Filled in by the store work.
