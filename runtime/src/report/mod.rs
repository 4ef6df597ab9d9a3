//! Renderings of a topology for people and programs: tables, matrices, JSON, Graphviz.

pub mod bandwidth;
pub mod dot;
pub mod heatmap;
pub mod json;
pub mod labels;
pub mod matrix;
pub mod shell_word;
pub mod table;

pub use labels::Labels;
