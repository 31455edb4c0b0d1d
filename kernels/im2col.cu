// im2col.cu -- unfold the receptive fields of a convolution into columns.
//
// A convolution is a matrix product once every input patch is laid out as a column:
//   cols[n, (c*KH + i)*KW + j, oh*Wo + ow] = x[n, c, oh*SH - PH + i*DH, ow*SW - PW + j*DW]
// (0 where the index falls outside the image; the same ordering as torch's F.unfold and
// mrcnn_np.autodiff.im2col). Then out[n] = weight.reshape(O, C*KH*KW) @ cols[n].
// A band of output rows [row_begin, row_begin + out_h) can be produced alone (the column
// index is then (oh - row_begin)*Wo + ow), so a big convolution can work in slices.
//
// One GPU thread per element of cols: the thread decodes its flat index into
// (n, c, i, j, oh, ow), reads one input pixel (or writes 0) and stores it. No thread
// writes where another one does, so there are no races and no atomics.
#ifndef scalar_t
#define scalar_t float  // the host compiles this file once per dtype with -Dscalar_t=...
#endif

extern "C" __global__ void im2col_kernel(
    const long long total,      // N * C*KH*KW * Ho*Wo, the number of elements of cols
    const scalar_t* x,          // (N, C, H, W) input
    const int channels, const int height, const int width,
    const int kernel_h, const int kernel_w,
    const int stride_h, const int stride_w,
    const int pad_h, const int pad_w,
    const int dilation_h, const int dilation_w,
    const int row_begin,        // first output row of the band
    const int out_h, const int out_w,  // rows in the band, output width
    scalar_t* cols) {           // (N, C*KH*KW, Ho*Wo) output
  // grid-stride loop: works for any grid size, each thread takes every stride-th element
  for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    // (n, c, i, j, oh, ow) is an element of cols: row (c*KH + i)*KW + j, column oh*Wo + ow
    // (oh counts rows from row_begin)
    const int ow = (int)(idx % out_w);
    const int oh = (int)((idx / out_w) % out_h);
    const int j = (int)((idx / ((long long)out_w * out_h)) % kernel_w);
    const int i = (int)((idx / ((long long)out_w * out_h * kernel_w)) % kernel_h);
    const int c = (int)((idx / ((long long)out_w * out_h * kernel_w * kernel_h)) % channels);
    const long long n = idx / ((long long)out_w * out_h * kernel_w * kernel_h * channels);

    const int h = (row_begin + oh) * stride_h - pad_h + i * dilation_h;  // input row this tap reads
    const int w = ow * stride_w - pad_w + j * dilation_w;  // input column
    scalar_t v = 0;                                        // zero padding
    if (h >= 0 && h < height && w >= 0 && w < width)
      v = x[((n * channels + c) * height + h) * width + w];
    cols[idx] = v;
  }
}
