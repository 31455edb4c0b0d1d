// nms.cu -- greedy non-maximum suppression, the pairwise part as a bit mask (torchvision's
// CUDA strategy, docs/REFERENCE.md section 5). Twin: mrcnn_np/ops/nms.py.
//
// Greedy NMS is sequential (whether box i survives depends on the survivors before it),
// but its expensive part -- N^2 IoU tests -- is not. With the boxes sorted by decreasing
// score, thread (i, jb) tests box i against the 64 boxes j = 64*jb ... 64*jb+63 and sets bit
// (j - 64*jb) of mask[i, jb] when j comes after i and IoU(i, j) > iou_threshold.
// The host then sweeps the boxes in order with a running "removed" bit set:
//   keep i if its bit is clear, then removed |= mask[i, :]   (a cheap O(N^2 / 64) pass).
//
//   boxes (N, 4) [x1, y1, x2, y2] sorted by decreasing score     mask (N, ceil(N/64)) uint64
// (Unlike torchvision's kernel this one does not stage boxes in shared memory: simpler, and
// it keeps the kernel free of __syncthreads so the host shim can run it.)
#ifndef scalar_t
#define scalar_t float
#endif

// IoU of boxes a and b in the boxes' dtype: inter / (area_a + area_b - inter).
__device__ __forceinline__ scalar_t box_iou(const scalar_t* a, const scalar_t* b) {
  const scalar_t left = a[0] > b[0] ? a[0] : b[0], right = a[2] < b[2] ? a[2] : b[2];
  const scalar_t top = a[1] > b[1] ? a[1] : b[1], bottom = a[3] < b[3] ? a[3] : b[3];
  const scalar_t w = right - left > 0 ? right - left : (scalar_t)0;
  const scalar_t h = bottom - top > 0 ? bottom - top : (scalar_t)0;
  const scalar_t inter = w * h;
  const scalar_t area_a = (a[2] - a[0]) * (a[3] - a[1]);
  const scalar_t area_b = (b[2] - b[0]) * (b[3] - b[1]);
  return inter / (area_a + area_b - inter);  // 0/0 = NaN for two empty boxes: never suppresses
}

extern "C" __global__ void nms_mask_kernel(
    const long long total,      // N * col_blocks
    const scalar_t* boxes,      // (N, 4), sorted by decreasing score
    const int n_boxes,
    const int col_blocks,       // ceil(N / 64)
    const double iou_threshold, // compared in double, as the NumPy twin does
    unsigned long long* mask) { // (N, col_blocks) output
  for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    // (i, jb) is an element of mask: box i against the boxes of 64-block jb
    const int jb = (int)(idx % col_blocks);
    const int i = (int)(idx / col_blocks);
    unsigned long long bits = 0;
    const int j0 = jb * 64;
    const int j_end = j0 + 64 < n_boxes ? j0 + 64 : n_boxes;
    for (int j = (i + 1 > j0 ? i + 1 : j0); j < j_end; ++j)  // only boxes after i matter
      if ((double)box_iou(boxes + 4 * (long long)i, boxes + 4 * (long long)j) > iou_threshold)
        bits |= 1ULL << (j - j0);
    mask[idx] = bits;
  }
}
