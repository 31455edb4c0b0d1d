// roi_pool.cu -- RoIPool forward (max with argmax) and backward (Fast R-CNN; torchvision
// semantics, docs/REFERENCE.md section 7). Twin: mrcnn_np/ops/roi_pool.py.
//
// The RoI corners are rounded to the feature grid (C round(): half away from zero), the
// rounded box (inclusive corners, hence +1) is cut into PH x PW bins with floor/ceil edges,
// and each bin takes the max of its pixels. argmax records the winning pixel h*W + w of
// the input plane (-1 for an empty bin, whose output is 0).
//
//   input  (N, C, H, W)     rois (K, 5) [batch_index, x1, y1, x2, y2]
//   output (K, C, PH, PW)   argmax (K, C, PH, PW) int
#ifndef scalar_t
#define scalar_t float
#endif

#define ROI_POOL_LOWEST (-3.402823466e+38)  // -FLT_MAX, the running max's start (as torchvision)
#define ROI_POOL_CORNER_MAX 536870912.0       // 2**29 cells: CORNER_MAX of mrcnn_np/ops/roi_pool.py

// C round() of a scaled corner, clamped to +-2**29 cells (far outside any map) before the
// cast to int: casting a float beyond int's range (coordinates near 3e38, or inf) is
// undefined behaviour, and every twin must give the same bins.
__device__ __forceinline__ int quantize(const scalar_t v) {
  const double r = round((double)v);
  return (int)(r < -ROI_POOL_CORNER_MAX ? -ROI_POOL_CORNER_MAX
                                        : (r > ROI_POOL_CORNER_MAX ? ROI_POOL_CORNER_MAX : r));
}

extern "C" __global__ void roi_pool_forward_kernel(
    const long long total,   // K * C * PH * PW
    const scalar_t* input,   // (N, C, H, W)
    const scalar_t spatial_scale,
    const int channels, const int height, const int width,
    const int pooled_h, const int pooled_w,
    const scalar_t* rois,    // (K, 5)
    scalar_t* output,        // (K, C, PH, PW)
    int* argmax) {           // (K, C, PH, PW)
  for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    // (k, c, ph, pw) is an element of the output
    const int pw = (int)(idx % pooled_w);
    const int ph = (int)((idx / pooled_w) % pooled_h);
    const int c = (int)((idx / ((long long)pooled_w * pooled_h)) % channels);
    const long long k = idx / ((long long)pooled_w * pooled_h * channels);

    const scalar_t* roi = rois + k * 5;
    const int batch = (int)roi[0];
    // quantisation 1: the RoI corners snap to integer feature cells
    const int start_w = quantize(roi[1] * spatial_scale);
    const int start_h = quantize(roi[2] * spatial_scale);
    const int end_w = quantize(roi[3] * spatial_scale);
    const int end_h = quantize(roi[4] * spatial_scale);
    const int roi_w = end_w - start_w + 1 > 1 ? end_w - start_w + 1 : 1;
    const int roi_h = end_h - start_h + 1 > 1 ? end_h - start_h + 1 : 1;
    const scalar_t bin_h = (scalar_t)roi_h / (scalar_t)pooled_h;
    const scalar_t bin_w = (scalar_t)roi_w / (scalar_t)pooled_w;

    // quantisation 2: bin edges snap outwards (floor start, ceil end), then clip to the map
    int hstart = (int)floor((scalar_t)ph * bin_h) + start_h;
    int hend = (int)ceil((scalar_t)(ph + 1) * bin_h) + start_h;
    int wstart = (int)floor((scalar_t)pw * bin_w) + start_w;
    int wend = (int)ceil((scalar_t)(pw + 1) * bin_w) + start_w;
    hstart = hstart < 0 ? 0 : (hstart > height ? height : hstart);
    hend = hend < 0 ? 0 : (hend > height ? height : hend);
    wstart = wstart < 0 ? 0 : (wstart > width ? width : wstart);
    wend = wend < 0 ? 0 : (wend > width ? width : wend);
    const bool empty = hend <= hstart || wend <= wstart;

    const scalar_t* plane = input + ((long long)batch * channels + c) * height * width;
    scalar_t best = empty ? (scalar_t)0 : (scalar_t)ROI_POOL_LOWEST;
    int best_i = -1;
    for (int h = hstart; h < hend; ++h)
      for (int w = wstart; w < wend; ++w) {
        const int i = h * width + w;
        if (plane[i] > best) {  // strict: ties keep the first pixel in row-major order
          best = plane[i];
          best_i = i;
        }
      }
    output[idx] = best;
    argmax[idx] = best_i;
  }
}

extern "C" __global__ void roi_pool_backward_kernel(
    const long long total,       // K * C * PH * PW
    const scalar_t* grad_output, // (K, C, PH, PW)
    const int channels, const int height, const int width,
    const int pooled_h, const int pooled_w,
    const scalar_t* rois,        // (K, 5), only the batch index is read
    const int* argmax,           // (K, C, PH, PW)
    scalar_t* grad_input) {      // (N, C, H, W), zero-initialised, accumulated
  for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    // (k, c, ph, pw) is an element of grad_output
    const int c = (int)((idx / ((long long)pooled_w * pooled_h)) % channels);
    const long long k = idx / ((long long)pooled_w * pooled_h * channels);
    const int a = argmax[idx];
    if (a < 0) continue;  // empty bin
    const int batch = (int)rois[k * 5];
    // the gradient goes to the one pixel that won the max; bins may share it -> atomic
    atomicAdd(grad_input + ((long long)batch * channels + c) * height * width + a,
              grad_output[idx]);
  }
}
