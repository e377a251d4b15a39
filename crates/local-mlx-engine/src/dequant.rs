//! Affine dequantization to fp32 on the CPU's cores, for the fp32 + OpenBLAS load.
//!
//! Written here, not left to MLX, because MLX 0.32's CPU `dequantize` is a chain of
//! whole-array ops (shifts, a broadcast copy, a cast, a multiply, an add), each one
//! materializing a full-size uint32 or fp32 intermediate, on one thread: about 1 s of
//! CPU for smol's 135M weights, most of the fp32 cold start. [`Affine::fp32_into`] reads
//! the packed words in place and writes each fp32 once, rows split across the cores.
//! Each element is `float(q) * scale + bias` rounded twice, as MLX's separate multiply
//! and add round it (Rust never fuses them into an FMA), so the result is MLX's bit for
//! bit: tests/array.rs checks it against MLX's own op, the parity tests against the
//! sidecar. Widths that do not pack whole into a 32-bit word (3, 5, 6 bits) have no
//! [`Affine`]: the caller then uses MLX's op.
use std::mem::MaybeUninit;

/// The layout of an affine-quantized `rows x cols` matrix: `cols * bits / 32` words a
/// row, low bits first, one scale and bias per `group_size` columns.
#[derive(Debug, Clone, Copy)]
pub struct Affine {
    rows: usize,
    cols: usize,
    group_size: usize,
    bits: usize,
}

impl Affine {
    /// `None` where `bits` does not divide 32 or the groups do not fit the words.
    pub fn new((rows, cols): (usize, usize), group_size: usize, bits: usize) -> Option<Affine> {
        let fits = bits > 0
            && bits < 32
            && 32 % bits == 0
            && group_size > 0
            && cols.is_multiple_of(group_size)
            && group_size.is_multiple_of(32 / bits);
        fits.then_some(Affine { rows, cols, group_size, bits })
    }

    /// Write the fp32 matrix into `out` (`rows * cols`, row-major). Returns false, writing
    /// nothing, if a slice's length does not match the layout.
    pub fn fp32_into(&self, packed: &[u32], scales: &[f32], biases: &[f32], out: &mut [MaybeUninit<f32>]) -> bool {
        let Affine { rows, cols, group_size, bits } = *self;
        let per_word = 32 / bits;
        let (words_per_row, groups) = (cols / per_word, cols / group_size);
        if packed.len() != rows * words_per_row
            || scales.len() != rows * groups
            || biases.len() != rows * groups
            || out.len() != rows * cols
        {
            return false;
        }
        if out.is_empty() {
            return true;
        }
        let mask = (1u32 << bits) - 1;
        let row = |r: usize, out: &mut [MaybeUninit<f32>]| {
            let words = &packed[r * words_per_row..(r + 1) * words_per_row];
            for (g, out) in out.chunks_exact_mut(group_size).enumerate() {
                let (scale, bias) = (scales[r * groups + g], biases[r * groups + g]);
                let words = &words[g * group_size / per_word..(g + 1) * group_size / per_word];
                for (out, &word) in out.chunks_exact_mut(per_word).zip(words) {
                    for (j, o) in out.iter_mut().enumerate() {
                        o.write(((word >> (bits * j)) & mask) as f32 * scale + bias);
                    }
                }
            }
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(rows);
        let rows_per_thread = rows.div_ceil(threads);
        std::thread::scope(|s| {
            for (t, chunk) in out.chunks_mut(rows_per_thread * cols).enumerate() {
                s.spawn(move || {
                    for (i, out) in chunk.chunks_exact_mut(cols).enumerate() {
                        row(t * rows_per_thread + i, out);
                    }
                });
            }
        });
        true
    }
}
