//! The MLX binding itself: arrays in and out, a matmul, an error from MLX as a Result.
use local_mlx_engine::array::{Array, Dtype};

#[test]
fn matmul_through_libmlx_gives_the_product() {
    assert!(local_mlx_engine::mlx_available(), "{}", local_mlx_engine::NO_MLX);
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let b = Array::from_slice(&[7.0f32, 8.0, 9.0, 10.0, 11.0, 12.0], &[3, 2]).unwrap();
    let c = a.matmul(&b).unwrap();
    assert_eq!(c.shape(), vec![2, 2]);
    assert_eq!(c.dtype(), Dtype::F32);
    assert_eq!(c.to_vec::<f32>().unwrap(), vec![58.0, 64.0, 139.0, 154.0]);
    assert!(local_mlx_engine::array::version().starts_with("0.32.4"), "{}", local_mlx_engine::array::version());
}

#[test]
fn a_shape_mismatch_is_an_error_with_mlxs_message() {
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[1, 3]).unwrap();
    let err = a.matmul(&a).unwrap_err().to_string();
    assert!(err.starts_with("MLX: ") && err.contains("matmul"), "{err}");
}

#[test]
fn an_array_filled_in_place_reads_back_in_place() {
    let values = [1.5f32, -2.0, 3.25, 4.0, 0.0, 7.0];
    let a = Array::filled(&[2, 3], |out| {
        for (o, v) in out.iter_mut().zip(values) {
            o.write(v);
        }
    })
    .unwrap();
    assert_eq!(a.shape(), vec![2, 3]);
    assert_eq!(a.data::<f32>().unwrap(), &values);
    let doubled = a.add(&a).unwrap();
    assert_eq!(doubled.to_vec::<f32>().unwrap(), vec![3.0, -4.0, 6.5, 8.0, 0.0, 14.0]);
    // Asking for the wrong element type, or a strided view, is an error, not garbage.
    assert!(a.data::<u32>().unwrap_err().to_string().contains("element type"));
    let view = a.transpose(&[1, 0]).unwrap();
    assert!(view.data::<f32>().unwrap_err().to_string().contains("row-contiguous"));
}

/// A deterministic stream of u32s (no rand dependency for one test).
fn lcg(seed: u64) -> impl FnMut() -> u32 {
    let mut state = seed;
    move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 32) as u32
    }
}

#[test]
fn our_fp32_dequantization_is_mlxs_bit_for_bit() {
    use local_mlx_engine::array::Quantized;
    use local_mlx_engine::dequant::Affine;
    for (bits, group_size) in [(4, 32), (4, 64), (8, 32), (8, 64), (2, 32)] {
        let (rows, cols) = (7, 256);
        let mut next = lcg(bits as u64 * 1000 + group_size as u64);
        let packed: Vec<u32> = (0..rows * cols * bits / 32).map(|_| next()).collect();
        // Scales and biases of the sizes real checkpoints have, both signs.
        let mut real = |scale: f32| (next() as f32 / u32::MAX as f32 - 0.5) * scale;
        let groups = rows * cols / group_size;
        let scales: Vec<f32> = (0..groups).map(|_| real(0.02)).collect();
        let biases: Vec<f32> = (0..groups).map(|_| real(0.5)).collect();
        let layout = Affine::new((rows, cols), group_size, bits).unwrap();
        let ours =
            Array::filled(&[rows, cols], |out| assert!(layout.fp32_into(&packed, &scales, &biases, out))).unwrap();
        let ours = ours.data::<f32>().unwrap();
        let q = Quantized {
            weight: Array::from_slice(&packed, &[rows, cols * bits / 32]).unwrap(),
            scales: Array::from_slice(&scales, &[rows, cols / group_size]).unwrap(),
            biases: Some(Array::from_slice(&biases, &[rows, cols / group_size]).unwrap()),
            group_size,
            bits,
            mode: "affine".into(),
        };
        let theirs = q.dequantize(None).unwrap().to_vec::<f32>().unwrap();
        let differing = ours.iter().zip(&theirs).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differing, 0, "{bits} bits, groups of {group_size}: {differing} of {} elements differ", ours.len());
    }
    // Widths that straddle words are left to MLX; slices that do not fit are refused.
    assert!(Affine::new((1, 32), 32, 3).is_none());
    let layout = Affine::new((1, 32), 32, 4).unwrap();
    let mut out = vec![std::mem::MaybeUninit::new(0f32); 32];
    assert!(!layout.fp32_into(&[0; 3], &[0.0], &[0.0], &mut out));
}
