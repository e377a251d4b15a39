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
