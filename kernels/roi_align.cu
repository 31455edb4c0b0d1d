// roi_align.cu -- RoIAlign forward and backward (Mask R-CNN section 3; torchvision semantics).
//
// Each output bin (k, c, ph, pw) is the average (or max) of gh x gw bilinear samples taken
// at regular points inside the bin of RoI k, with no rounding of the RoI or the bins.
// The twin in NumPy/numba is mrcnn_np/ops/roi_align.py; the helpers carry the same names
// (bilinear_interpolate, bilinear_interpolate_gradient). Spec: docs/REFERENCE.md section 8.
//
//   input  (N, C, H, W)      rois (K, 5) [batch_index, x1, y1, x2, y2] in input pixels / scale
//   output (K, C, PH, PW)    argmax (K, C, PH, PW) int: winning sample iy*gw + ix (max only)
//
// Forward: one thread per output element, a pure gather (no races).
// Backward: one thread per output-gradient element; it scatters into grad_input with
// atomicAdd, because bins of overlapping RoIs (and neighbouring bins) share input pixels.
#ifndef scalar_t
#define scalar_t float  // compiled once per dtype with -Dscalar_t=float / double
#endif

// The four neighbours of (y, x) and their weights; returns false (and neighbours -1) when
// the point is outside [-1, H] x [-1, W] and so received no weight in the forward pass.
__device__ __forceinline__ bool bilinear_interpolate_gradient(
    const int height, const int width, scalar_t y, scalar_t x,
    scalar_t& w1, scalar_t& w2, scalar_t& w3, scalar_t& w4,
    int& x_low, int& x_high, int& y_low, int& y_high) {
  if (!(y >= -1.0 && y <= height && x >= -1.0 && x <= width)) {
    w1 = w2 = w3 = w4 = 0;
    x_low = x_high = y_low = y_high = -1;
    return false;
  }
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  y_low = (int)y;
  x_low = (int)x;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = (scalar_t)y_low;
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = (scalar_t)x_low;
  } else {
    x_high = x_low + 1;
  }
  const scalar_t ly = y - y_low, lx = x - x_low;
  const scalar_t hy = 1 - ly, hx = 1 - lx;
  w1 = hy * hx;  // (y_low, x_low)
  w2 = hy * lx;  // (y_low, x_high)
  w3 = ly * hx;  // (y_high, x_low)
  w4 = ly * lx;  // (y_high, x_high)
  return true;
}

// Bilinear value of the (H, W) plane at the real point (y, x); 0 outside [-1, H] x [-1, W].
// The border rules live in bilinear_interpolate_gradient; the value is the weighted sum of
// the four neighbours it returns.
__device__ __forceinline__ scalar_t bilinear_interpolate(
    const scalar_t* plane, const int height, const int width, scalar_t y, scalar_t x) {
  scalar_t w1, w2, w3, w4;
  int x_low, x_high, y_low, y_high;
  if (!bilinear_interpolate_gradient(height, width, y, x, w1, w2, w3, w4, x_low, x_high, y_low, y_high))
    return 0;
  return w1 * plane[y_low * width + x_low] + w2 * plane[y_low * width + x_high] +
         w3 * plane[y_high * width + x_low] + w4 * plane[y_high * width + x_high];
}

// The geometry of bin (ph, pw) of one RoI, shared by forward and backward.
struct RoiBin {
  scalar_t y0, x0;       // top-left corner of the bin (input pixels)
  scalar_t bin_h, bin_w; // bin size
  int grid_h, grid_w;    // samples per bin along y and x
  int batch;             // image index of the RoI
};

// ceil(cells) samples per bin side; 0 when that is not finite or does not fit an int (RoI
// coordinates near the float limits): casting such a float to int is undefined behaviour.
// The same rule as adaptive_grid in mrcnn_np/ops/roi_geometry.py.
__device__ __forceinline__ int adaptive_grid(const scalar_t cells) {
  const double c = ceil((double)cells);
  return (c == c && c >= -2147483647.0 && c <= 2147483647.0) ? (int)c : 0;
}

__device__ __forceinline__ RoiBin roi_bin(const scalar_t* roi, const scalar_t spatial_scale,
                                          const int pooled_h, const int pooled_w,
                                          const int sampling_ratio, const int aligned,
                                          const int ph, const int pw) {
  RoiBin b;
  b.batch = (int)roi[0];
  const scalar_t offset = aligned ? (scalar_t)0.5 : (scalar_t)0.0;  // pixel-centre model
  const scalar_t start_w = roi[1] * spatial_scale - offset;
  const scalar_t start_h = roi[2] * spatial_scale - offset;
  const scalar_t end_w = roi[3] * spatial_scale - offset;
  const scalar_t end_h = roi[4] * spatial_scale - offset;
  scalar_t roi_w = end_w - start_w, roi_h = end_h - start_h;
  if (!aligned) {  // legacy behaviour: force malformed RoIs to be at least 1x1
    roi_w = roi_w > 1 ? roi_w : (scalar_t)1;
    roi_h = roi_h > 1 ? roi_h : (scalar_t)1;
  }
  b.bin_h = roi_h / (scalar_t)pooled_h;
  b.bin_w = roi_w / (scalar_t)pooled_w;
  // adaptive sampling (sampling_ratio <= 0): about one sample per input pixel
  b.grid_h = sampling_ratio > 0 ? sampling_ratio : adaptive_grid(roi_h / (scalar_t)pooled_h);
  b.grid_w = sampling_ratio > 0 ? sampling_ratio : adaptive_grid(roi_w / (scalar_t)pooled_w);
  b.y0 = start_h + (scalar_t)ph * b.bin_h;
  b.x0 = start_w + (scalar_t)pw * b.bin_w;
  return b;
}

// Coordinates of sample (iy, ix) of a bin: the centres of a grid_h x grid_w grid.
__device__ __forceinline__ scalar_t sample_y(const RoiBin& b, const int iy) {
  return b.y0 + (scalar_t)(iy + 0.5) * b.bin_h / (scalar_t)b.grid_h;
}
__device__ __forceinline__ scalar_t sample_x(const RoiBin& b, const int ix) {
  return b.x0 + (scalar_t)(ix + 0.5) * b.bin_w / (scalar_t)b.grid_w;
}

extern "C" __global__ void roi_align_forward_kernel(
    const long long total,     // K * C * PH * PW
    const scalar_t* input,     // (N, C, H, W)
    const scalar_t spatial_scale,
    const int channels, const int height, const int width,
    const int pooled_h, const int pooled_w,
    const int sampling_ratio,  // > 0: fixed grid; <= 0: adaptive
    const int aligned,         // 1: shift by -0.5 (pixel centres), 0: legacy
    const int use_max,         // 0: average the samples, 1: take their max
    const scalar_t* rois,      // (K, 5)
    scalar_t* output,          // (K, C, PH, PW)
    int* argmax) {             // (K, C, PH, PW), written only when use_max
  for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    // (k, c, ph, pw) is an element of the output
    const int pw = (int)(idx % pooled_w);
    const int ph = (int)((idx / pooled_w) % pooled_h);
    const int c = (int)((idx / ((long long)pooled_w * pooled_h)) % channels);
    const long long k = idx / ((long long)pooled_w * pooled_h * channels);

    const RoiBin b = roi_bin(rois + k * 5, spatial_scale, pooled_h, pooled_w, sampling_ratio,
                             aligned, ph, pw);
    const scalar_t* plane = input + ((long long)b.batch * channels + c) * height * width;

    if (!use_max) {
      const int count = b.grid_h * b.grid_w > 1 ? b.grid_h * b.grid_w : 1;
      scalar_t sum = 0;
      for (int iy = 0; iy < b.grid_h; ++iy)
        for (int ix = 0; ix < b.grid_w; ++ix)
          sum += bilinear_interpolate(plane, height, width, sample_y(b, iy), sample_x(b, ix));
      output[idx] = sum / (scalar_t)count;
    } else {
      // max over the same samples; the first maximum wins (strict >); no sample -> 0, -1
      scalar_t best = 0;
      int best_i = -1;
      for (int iy = 0; iy < b.grid_h; ++iy)
        for (int ix = 0; ix < b.grid_w; ++ix) {
          const scalar_t v =
              bilinear_interpolate(plane, height, width, sample_y(b, iy), sample_x(b, ix));
          if (best_i < 0 || v > best) {
            best = v;
            best_i = iy * b.grid_w + ix;
          }
        }
      output[idx] = best;
      argmax[idx] = best_i;
    }
  }
}

extern "C" __global__ void roi_align_backward_kernel(
    const long long total,     // K * C * PH * PW
    const scalar_t* grad_output,  // (K, C, PH, PW)
    const scalar_t spatial_scale,
    const int channels, const int height, const int width,
    const int pooled_h, const int pooled_w,
    const int sampling_ratio, const int aligned, const int use_max,
    const scalar_t* rois,      // (K, 5)
    const int* argmax,         // (K, C, PH, PW), read only when use_max
    scalar_t* grad_input) {    // (N, C, H, W), zero-initialised by the caller, accumulated
  for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    // (k, c, ph, pw) is an element of grad_output
    const int pw = (int)(idx % pooled_w);
    const int ph = (int)((idx / pooled_w) % pooled_h);
    const int c = (int)((idx / ((long long)pooled_w * pooled_h)) % channels);
    const long long k = idx / ((long long)pooled_w * pooled_h * channels);

    const RoiBin b = roi_bin(rois + k * 5, spatial_scale, pooled_h, pooled_w, sampling_ratio,
                             aligned, ph, pw);
    scalar_t* plane = grad_input + ((long long)b.batch * channels + c) * height * width;

    // avg: every sample receives grad / count; max: only the winning sample, with grad
    int iy_begin = 0, iy_end = b.grid_h, ix_begin = 0, ix_end = b.grid_w;
    scalar_t g;
    if (use_max) {
      const int a = argmax[idx];
      // empty bin (-1): nothing flowed forward, nothing flows back. An argmax outside the
      // bin's grid (the launcher refuses it; a zero grid would divide by zero) is skipped.
      if (a < 0 || b.grid_h <= 0 || b.grid_w <= 0 || a >= b.grid_h * b.grid_w) continue;
      iy_begin = a / b.grid_w; iy_end = iy_begin + 1;
      ix_begin = a % b.grid_w; ix_end = ix_begin + 1;
      g = grad_output[idx];
    } else {
      const int count = b.grid_h * b.grid_w > 1 ? b.grid_h * b.grid_w : 1;
      g = grad_output[idx] / (scalar_t)count;
    }
    for (int iy = iy_begin; iy < iy_end; ++iy)
      for (int ix = ix_begin; ix < ix_end; ++ix) {
        scalar_t w1, w2, w3, w4;
        int x_low, x_high, y_low, y_high;
        if (!bilinear_interpolate_gradient(height, width, sample_y(b, iy), sample_x(b, ix),
                                           w1, w2, w3, w4, x_low, x_high, y_low, y_high))
          continue;
        // several threads may hit the same pixel: atomic accumulation
        atomicAdd(plane + y_low * width + x_low, g * w1);
        atomicAdd(plane + y_low * width + x_high, g * w2);
        atomicAdd(plane + y_high * width + x_low, g * w3);
        atomicAdd(plane + y_high * width + x_high, g * w4);
      }
  }
}
