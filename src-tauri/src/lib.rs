//! Tandem desktop app.
