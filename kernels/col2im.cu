// col2im.cu -- the adjoint of im2col: fold columns back onto the image, summing overlaps.
//
//   dx[n, c, h, w] = sum over taps (i, j) and positions (oh, ow) with
//                    oh*SH - PH + i*DH == h and ow*SW - PW + j*DW == w
//                    of dcols[n, (c*KH + i)*KW + j, oh*Wo + ow]
//
// Written as a GATHER: one GPU thread per input pixel (n, c, h, w) walks the KH*KW taps,
// works out which output position (oh, ow), if any, read this pixel through that tap,
// and sums those column entries. Each thread writes only its own pixel, so unlike the
// scatter formulation (one thread per column entry, atomicAdd into dx) it needs no atomics
// and its result does not depend on the order threads run in.
#ifndef scalar_t
#define scalar_t float
#endif

extern "C" __global__ void col2im_kernel(
    const long long total,      // N * C * H * W, the number of elements of dx
    const scalar_t* cols,       // (N, C*KH*KW, Ho*Wo) column gradients
    const int channels, const int height, const int width,
    const int kernel_h, const int kernel_w,
    const int stride_h, const int stride_w,
    const int pad_h, const int pad_w,
    const int dilation_h, const int dilation_w,
    const int row_begin,        // cols hold output rows [row_begin, row_begin + out_h)
    const int out_h, const int out_w,
    const int accumulate,       // 1: dx += result (a band adds to the earlier ones), 0: dx =
    scalar_t* dx) {             // (N, C, H, W) output
  for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    // (n, c, h, w) is an element of dx
    const int w = (int)(idx % width);
    const int h = (int)((idx / width) % height);
    const int c = (int)((idx / ((long long)width * height)) % channels);
    const long long n = idx / ((long long)width * height * channels);

    const long long n_rows = (long long)channels * kernel_h * kernel_w;
    const long long n_cols = (long long)out_h * out_w;
    scalar_t sum = 0;
    for (int i = 0; i < kernel_h; ++i) {
      // tap i reads row h from output row oh when oh*SH = h + PH - i*DH
      const int hs = h + pad_h - i * dilation_h;
      if (hs < 0 || hs % stride_h != 0) continue;  // test hs >= 0 first: C's % of a negative is negative
      const int oh = hs / stride_h - row_begin;  // row inside the band
      if (oh < 0 || oh >= out_h) continue;
      for (int j = 0; j < kernel_w; ++j) {
        const int ws = w + pad_w - j * dilation_w;
        if (ws < 0 || ws % stride_w != 0) continue;
        const int ow = ws / stride_w;
        if (ow >= out_w) continue;
        const long long row = ((long long)c * kernel_h + i) * kernel_w + j;
        sum += cols[(n * n_rows + row) * n_cols + (long long)oh * out_w + ow];
      }
    }
    dx[idx] = accumulate ? dx[idx] + sum : sum;
  }
}
