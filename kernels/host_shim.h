// host_shim.h -- run the CUDA C kernels of this directory on a CPU.
//
// Included before a kernel source (g++ -x c++ -include kernels/host_shim.h k.cu), it
// defines just enough of CUDA for the kernels to compile as ordinary C++:
//   * the qualifiers __global__, __device__, __host__, __forceinline__ (no-ops / inline);
//   * dim3 and the built-in variables threadIdx, blockIdx (thread_local: each host thread
//     that executes GPU threads has its own) and blockDim, gridDim (thread_local too);
//   * atomicAdd for float, double, int and unsigned long long, implemented with a
//     compare-and-swap loop, so it stays correct when blocks run on several host threads;
//   * shim::launch(grid, block, n_host_threads, body): the grid loop. Every (block, thread)
//     pair runs body() once with blockIdx/threadIdx set; blocks are dealt round-robin to
//     n_host_threads host threads; the threads of one block run one after the other.
//
// What it does NOT emulate (see kernels/README.md): warps and warp intrinsics, shared
// memory, __syncthreads (a kernel that calls it fails to compile here, on purpose), the
// GPU memory model, and float rounding details (nvcc contracts a*b+c into FMA).
// The kernels are written so that none of this matters: one thread per output element,
// grid-stride loops, no communication between threads except atomicAdd.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// A kernel that synchronises the threads of a block cannot run on the shim's sequential
// block loop; this name turns its use into a readable compile error.
#define __syncthreads() SHIM_DOES_NOT_EMULATE_syncthreads_see_kernels_README()

struct dim3 {
  unsigned int x, y, z;
  dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

namespace shim {

// Atomic read-modify-write of a float/double through its integer bit pattern: the CUDA
// atomicAdd contract (returns the old value) with GCC's __atomic builtins.
template <class T, class Bits>
inline T atomic_add_bits(T* address, T val) {
  static_assert(sizeof(T) == sizeof(Bits), "bit width mismatch");
  Bits* p = reinterpret_cast<Bits*>(address);
  Bits old_bits = __atomic_load_n(p, __ATOMIC_RELAXED);
  for (;;) {
    T old_val, new_val;
    memcpy(&old_val, &old_bits, sizeof(T));
    new_val = old_val + val;
    Bits new_bits;
    memcpy(&new_bits, &new_val, sizeof(T));
    if (__atomic_compare_exchange_n(p, &old_bits, new_bits, false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
      return old_val;
    // old_bits now holds the value another thread wrote; try again with it.
  }
}

// Run body() for every thread of every block of the grid.
template <class F>
inline void launch(dim3 grid, dim3 block, int n_host_threads, F body) {
  const long long n_blocks = (long long)grid.x * grid.y * grid.z;
  auto worker = [&](int tid, int nt) {
    gridDim = grid;
    blockDim = block;
    for (long long b = tid; b < n_blocks; b += nt) {
      blockIdx = dim3((unsigned)(b % grid.x), (unsigned)((b / grid.x) % grid.y),
                      (unsigned)(b / ((long long)grid.x * grid.y)));
      for (unsigned tz = 0; tz < block.z; ++tz)
        for (unsigned ty = 0; ty < block.y; ++ty)
          for (unsigned tx = 0; tx < block.x; ++tx) {
            threadIdx = dim3(tx, ty, tz);
            body();
          }
    }
  };
  if (n_host_threads <= 1) {
    worker(0, 1);
    return;
  }
  std::vector<std::thread> pool;
  for (int t = 0; t < n_host_threads; ++t) pool.emplace_back(worker, t, n_host_threads);
  for (auto& th : pool) th.join();
}

}  // namespace shim

inline float atomicAdd(float* address, float val) {
  return shim::atomic_add_bits<float, uint32_t>(address, val);
}
inline double atomicAdd(double* address, double val) {
  return shim::atomic_add_bits<double, uint64_t>(address, val);
}
inline int atomicAdd(int* address, int val) {
  return __atomic_fetch_add(address, val, __ATOMIC_RELAXED);
}
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long val) {
  return __atomic_fetch_add(address, val, __ATOMIC_RELAXED);
}
