/**
 * The C source of the CPU backend's native kernels (see `native.ts`, which
 * compiles it once per machine and opens it with `Deno.dlopen`).
 *
 * Each kernel computes exactly what its TypeScript twin computes, in the
 * same arithmetic (float64 where the TypeScript works on JavaScript numbers,
 * no fused multiply-add), so the two agree bit for bit wherever the order of
 * a sum does not differ; the one exception is the ReLU gradient of an
 * infinite gradient at a non-positive input, 0 here as in PyTorch (the
 * TypeScript's multiply by the mask gives NaN). Loops over planes or chunks run on OpenMP threads;
 * every reduction adds fixed per-plane partial sums in a fixed order, so a
 * result does not depend on the thread count or the schedule.
 *
 * @module
 */

/** Bumped with every change to the exported functions' signatures. */
export const NATIVE_ABI = 1;

/** The kernels, as one C translation unit. */
export const NATIVE_SOURCE: string = String.raw`
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Loops over fewer elements than this stay on the calling thread. */
#define PAR_MIN 32768

int32_t kd_abi(void) { return ${NATIVE_ABI}; }

/*
 * The threads a parallel loop uses (1 when built without OpenMP), and the
 * calling thread's count for later loops (setNumThreads).
 */
#ifdef _OPENMP
int omp_get_max_threads(void);
void omp_set_num_threads(int);
int32_t kd_threads(void) { return omp_get_max_threads(); }
void kd_set_threads(int32_t n) { omp_set_num_threads(n); }
#else
int32_t kd_threads(void) { return 1; }
void kd_set_threads(int32_t n) { (void)n; }
#endif

static double sum_f32(const float* a, int64_t len) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < len; i++) s += a[i];
  return s;
}

static double sq_dev(const float* a, int64_t len, double m) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < len; i++) {
    double d = (double)a[i] - m;
    s += d * d;
  }
  return s;
}

/*
 * Batch-norm statistics of x [n, c, hw]: out[ch] = mean, out[c + ch] = sum of
 * squared deviations from it. part: n * c doubles of scratch.
 */
void kd_bn_stats(const float* x, double n_, double c_, double hw_,
                 double* part, double* out) {
  const int64_t n = (int64_t)n_;
  const int64_t c = (int64_t)c_;
  const int64_t hw = (int64_t)hw_;
  const int64_t planes = n * c;
#pragma omp parallel for schedule(static) if (planes * hw >= PAR_MIN)
  for (int64_t p = 0; p < planes; p++) part[p] = sum_f32(x + p * hw, hw);
  for (int64_t ch = 0; ch < c; ch++) {
    double s = 0;
    for (int64_t b = 0; b < n; b++) s += part[b * c + ch];
    out[ch] = s / (double)(n * hw);
  }
#pragma omp parallel for schedule(static) if (planes * hw >= PAR_MIN)
  for (int64_t p = 0; p < planes; p++) {
    part[p] = sq_dev(x + p * hw, hw, out[p % c]);
  }
  for (int64_t ch = 0; ch < c; ch++) {
    double s = 0;
    for (int64_t b = 0; b < n; b++) s += part[b * c + ch];
    out[c + ch] = s;
  }
}

/* y = x * scale[ch] + shift[ch] per channel of [n, c, hw], then ReLU if asked. */
void kd_channel_affine(const float* x, float* y, const double* scale,
                       const double* shift, double n_, double c_, double hw_,
                       int32_t relu) {
  const int64_t n = (int64_t)n_;
  const int64_t c = (int64_t)c_;
  const int64_t hw = (int64_t)hw_;
  const int64_t planes = n * c;
#pragma omp parallel for schedule(static) if (planes * hw >= PAR_MIN)
  for (int64_t p = 0; p < planes; p++) {
    const double s = scale[p % c], t = shift[p % c];
    const float* xp = x + p * hw;
    float* yp = y + p * hw;
    if (relu) {
      for (int64_t i = 0; i < hw; i++) {
        const float v = (float)((double)xp[i] * s + t);
        yp[i] = v < 0.0f ? 0.0f : v; /* PyTorch: -0 and NaN stay */
      }
    } else {
      for (int64_t i = 0; i < hw; i++) yp[i] = (float)((double)xp[i] * s + t);
    }
  }
}

/*
 * Batch-norm backward sums: out[ch] = sum(dy), out[c + ch] =
 * sum((x - mean[ch]) * dy). part: 2 * n * c doubles of scratch.
 */
void kd_bn_bwd_stats(const float* x, const float* dy, const double* mean,
                     double n_, double c_, double hw_, double* part,
                     double* out) {
  const int64_t n = (int64_t)n_;
  const int64_t c = (int64_t)c_;
  const int64_t hw = (int64_t)hw_;
  const int64_t planes = n * c;
#pragma omp parallel for schedule(static) if (planes * hw >= PAR_MIN)
  for (int64_t p = 0; p < planes; p++) {
    const float* xp = x + p * hw;
    const float* gp = dy + p * hw;
    const double m = mean[p % c];
    double s = 0, d = 0;
#pragma omp simd reduction(+ : s, d)
    for (int64_t i = 0; i < hw; i++) {
      s += gp[i];
      d += ((double)xp[i] - m) * gp[i];
    }
    part[p] = s;
    part[planes + p] = d;
  }
  for (int64_t ch = 0; ch < c; ch++) {
    double s = 0, d = 0;
    for (int64_t b = 0; b < n; b++) {
      s += part[b * c + ch];
      d += part[planes + b * c + ch];
    }
    out[ch] = s;
    out[c + ch] = d;
  }
}

/*
 * dx = (dy - (x - m) * proj - gradMean) * scale per channel; coef holds the
 * four per-channel vectors m, proj, gradMean, scale one after another.
 */
void kd_bn_bwd_apply(const float* x, const float* dy, float* dx,
                     const double* coef, double n_, double c_, double hw_) {
  const int64_t n = (int64_t)n_;
  const int64_t c = (int64_t)c_;
  const int64_t hw = (int64_t)hw_;
  const int64_t planes = n * c;
#pragma omp parallel for schedule(static) if (planes * hw >= PAR_MIN)
  for (int64_t p = 0; p < planes; p++) {
    const int64_t ch = p % c;
    const double m = coef[ch], proj = coef[c + ch], gm = coef[2 * c + ch],
                 sc = coef[3 * c + ch];
    const float* xp = x + p * hw;
    const float* gp = dy + p * hw;
    float* op = dx + p * hw;
    for (int64_t i = 0; i < hw; i++) {
      op[i] = (float)(((double)gp[i] - ((double)xp[i] - m) * proj - gm) * sc);
    }
  }
}

/* A pooling geometry, read once from the int32 array the caller passes. */
typedef struct {
  int64_t h, w, oh, ow;
  int32_t kh, kw, sh, sw, ph, pw, dh, dw;
  int fast; /* the 2x2 stride-2 window without padding */
} pool_geo;

static pool_geo read_geo(const int32_t* g) {
  pool_geo r = {g[0], g[1], g[2],  g[3],  g[4],  g[5], g[6],
                g[7], g[8], g[9], g[10], g[11], 0};
  r.fast = r.kh == 2 && r.kw == 2 && r.sh == 2 && r.sw == 2 && r.ph == 0 &&
           r.pw == 0 && r.dh == 1 && r.dw == 1 && 2 * r.oh <= r.h &&
           2 * r.ow <= r.w;
  return r;
}

/*
 * Max pooling of one plane without dilation, separably: the max over each
 * window's columns for every input row, then over its rows. Scanning rows
 * then columns keeps PyTorch's result, the first of equal values in
 * row-major order. Without NaNs, v > m ? v : m is that rule and compiles to
 * vector code; a plane that holds a NaN returns 0 and takes the exact loop.
 * Every window must be non-empty. tmp: h * ow floats; tmpi (for indices,
 * when ip is not null): h * ow ints.
 */
static int maxpool_plane_sep(const float* xp, float* yp, int32_t* ip,
                             const pool_geo* g, float* tmp, int32_t* tmpi) {
  const int64_t h = g->h, w = g->w, oh = g->oh, ow = g->ow;
  int nan = 0;
  for (int64_t r = 0; r < h; r++) {
    const float* row = xp + r * w;
    for (int64_t ox = 0; ox < ow; ox++) {
      int64_t ws = ox * g->sw - g->pw;
      int64_t we = ws + g->kw;
      if (ws < 0) ws = 0;
      if (we > w) we = w;
      float m = row[ws];
      int64_t mi = ws;
      nan |= m != m;
      for (int64_t ix = ws + 1; ix < we; ix++) {
        const float v = row[ix];
        nan |= v != v;
        mi = v > m ? ix : mi;
        m = v > m ? v : m;
      }
      tmp[r * ow + ox] = m;
      if (ip) tmpi[r * ow + ox] = (int32_t)(r * w + mi);
    }
  }
  if (nan) return 0;
  for (int64_t oy = 0; oy < oh; oy++) {
    int64_t hs = oy * g->sh - g->ph;
    int64_t he = hs + g->kh;
    if (hs < 0) hs = 0;
    if (he > h) he = h;
    float* out = yp + oy * ow;
    memcpy(out, tmp + hs * ow, sizeof(float) * (size_t)ow);
    if (ip) {
      int32_t* oi = ip + oy * ow;
      memcpy(oi, tmpi + hs * ow, sizeof(int32_t) * (size_t)ow);
      for (int64_t iy = hs + 1; iy < he; iy++) {
        const float* t = tmp + iy * ow;
        const int32_t* ti = tmpi + iy * ow;
        for (int64_t ox = 0; ox < ow; ox++) {
          oi[ox] = t[ox] > out[ox] ? ti[ox] : oi[ox];
          out[ox] = t[ox] > out[ox] ? t[ox] : out[ox];
        }
      }
      continue;
    }
    for (int64_t iy = hs + 1; iy < he; iy++) {
      const float* t = tmp + iy * ow;
      for (int64_t ox = 0; ox < ow; ox++) {
        out[ox] = t[ox] > out[ox] ? t[ox] : out[ox];
      }
    }
  }
  return 1;
}

/* Whether every window along one axis holds at least one input cell. */
static int windows_nonempty(int64_t out, int64_t size, int32_t k, int32_t s,
                            int32_t pad) {
  for (int64_t o = 0; o < out; o++) {
    int64_t st = o * s - pad, en = st + k;
    if (st < 0) st = 0;
    if (en > size) en = size;
    if (st >= en) return 0;
  }
  return 1;
}

/* The exact loop over the windows of one plane (ip null: no indices). */
static void maxpool_plane(const float* xp, float* yp, int32_t* ip,
                          const pool_geo* g) {
  const int64_t h = g->h, w = g->w, oh = g->oh, ow = g->ow;
  for (int64_t oy = 0; oy < oh; oy++) {
    if (g->fast) {
      const int32_t r0 = (int32_t)(2 * oy * w), r1 = r0 + (int32_t)w;
      for (int64_t ox = 0; ox < ow; ox++) {
        const int32_t i0 = r0 + 2 * (int32_t)ox, i2 = r1 + 2 * (int32_t)ox;
        float b = xp[i0];
        int32_t bi = i0;
        float v = xp[i0 + 1];
        int t = (v > b) | (v != v);
        b = t ? v : b;
        bi = t ? i0 + 1 : bi;
        v = xp[i2];
        t = (v > b) | (v != v);
        b = t ? v : b;
        bi = t ? i2 : bi;
        v = xp[i2 + 1];
        t = (v > b) | (v != v);
        b = t ? v : b;
        bi = t ? i2 + 1 : bi;
        yp[oy * ow + ox] = b;
        if (ip) ip[oy * ow + ox] = bi;
      }
      continue;
    }
    int64_t hs = oy * g->sh - g->ph;
    const int64_t he0 = hs + (int64_t)(g->kh - 1) * g->dh + 1;
    const int64_t he = he0 < h ? he0 : h;
    while (hs < 0) hs += g->dh;
    for (int64_t ox = 0; ox < ow; ox++) {
      int64_t ws = ox * g->sw - g->pw;
      const int64_t we0 = ws + (int64_t)(g->kw - 1) * g->dw + 1;
      const int64_t we = we0 < w ? we0 : w;
      while (ws < 0) ws += g->dw;
      float b = -__builtin_inff();
      int32_t bi = (int32_t)(hs * w + ws);
      for (int64_t iy = hs; iy < he; iy += g->dh) {
        for (int64_t ix = ws; ix < we; ix += g->dw) {
          /* selects, not branches: random data mispredicts half of them */
          const float v = xp[iy * w + ix];
          const int t = (v > b) | (v != v);
          b = t ? v : b;
          bi = t ? (int32_t)(iy * w + ix) : bi;
        }
      }
      yp[oy * ow + ox] = b;
      if (ip) ip[oy * ow + ox] = bi;
    }
  }
}

/*
 * Max pooling over planes [planes, h, w] -> [planes, oh, ow], PyTorch's rule:
 * the first of equal values wins, a NaN wins. geo: h, w, oh, ow, kh, kw, sh,
 * sw, ph, pw, dh, dw. Indices (ih * w + iw) are written when need_idx != 0.
 */
void kd_maxpool(const float* x, float* y, int32_t* idx, int32_t need_idx,
                double planes_, const int32_t* geo) {
  const int64_t planes = (int64_t)planes_;
  const pool_geo g = read_geo(geo);
  const int64_t in = g.h * g.w, out = g.oh * g.ow;
  const int separable = !g.fast && g.dh == 1 && g.dw == 1 &&
                        windows_nonempty(g.oh, g.h, g.kh, g.sh, g.ph) &&
                        windows_nonempty(g.ow, g.w, g.kw, g.sw, g.pw);
#pragma omp parallel if (planes * in >= PAR_MIN)
  {
    float* tmp = separable ? malloc(sizeof(float) * (size_t)(g.h * g.ow)) : 0;
    int32_t* tmpi = separable && need_idx
                        ? malloc(sizeof(int32_t) * (size_t)(g.h * g.ow))
                        : 0;
    const int sep = separable && tmp && (tmpi || !need_idx);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; p++) {
      int32_t* ip = need_idx ? idx + p * out : 0;
      if (!sep || !maxpool_plane_sep(x + p * in, y + p * out, ip, &g, tmp,
                                     tmpi)) {
        maxpool_plane(x + p * in, y + p * out, ip, &g);
      }
    }
    free(tmp);
    free(tmpi);
  }
}

/*
 * Gradient of max pooling: dx[idx] += dy per plane. tile != 0 when 2x2
 * stride-2 windows tile the input exactly: every dx element is then written
 * once and no zero fill is needed.
 */
void kd_maxpool_bwd(const float* dy, const int32_t* idx, float* dx,
                    double planes_, double h_, double w_, double oh_,
                    double ow_, int32_t tile) {
  const int64_t planes = (int64_t)planes_;
  const int64_t h = (int64_t)h_;
  const int64_t w = (int64_t)w_;
  const int64_t oh = (int64_t)oh_;
  const int64_t ow = (int64_t)ow_;
#pragma omp parallel for schedule(static) if (planes * h * w >= PAR_MIN)
  for (int64_t p = 0; p < planes; p++) {
    const float* gp = dy + p * oh * ow;
    const int32_t* ip = idx + p * oh * ow;
    float* op = dx + p * h * w;
    if (tile) {
      for (int64_t oy = 0; oy < oh; oy++) {
        const int32_t r0 = (int32_t)(2 * oy * w), r1 = r0 + (int32_t)w;
        for (int64_t ox = 0; ox < ow; ox++) {
          const float g = gp[oy * ow + ox];
          const int32_t at = ip[oy * ow + ox];
          const int32_t i0 = r0 + 2 * (int32_t)ox, i2 = r1 + 2 * (int32_t)ox;
          op[i0] = at == i0 ? g : 0.0f;
          op[i0 + 1] = at == i0 + 1 ? g : 0.0f;
          op[i2] = at == i2 ? g : 0.0f;
          op[i2 + 1] = at == i2 + 1 ? g : 0.0f;
        }
      }
    } else {
      memset(op, 0, sizeof(float) * (size_t)(h * w));
      for (int64_t q = 0; q < oh * ow; q++) op[ip[q]] += gp[q];
    }
  }
}

/* ReLU as PyTorch's clamp_min(x, 0): a negative becomes +0, while -0, NaN
 * and +Infinity stay. */
void kd_relu(const float* x, float* y, double n_) {
  const int64_t n = (int64_t)n_;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v;
  }
}

/* Gradient of ReLU: out = b <= 0 ? 0 : dy (a NaN b passes dy). */
void kd_relu_grad(const float* dy, const float* b, float* out, double n_) {
  const int64_t n = (int64_t)n_;
  /* on the bits: a select whose false arm loads would not vectorise */
  const uint32_t* g = (const uint32_t*)dy;
  uint32_t* o = (uint32_t*)out;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    o[i] = g[i] & (uint32_t) - (int32_t)!(b[i] <= 0.0f);
  }
}

/* y = a + b, elementwise. */
void kd_add(const float* a, const float* b, float* y, double n_) {
  const int64_t n = (int64_t)n_;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

/* dst += alpha * src, in float64 as the TypeScript does. */
void kd_axpy(float* dst, const float* src, double alpha, double n_) {
  const int64_t n = (int64_t)n_;
  if (alpha == 1.0) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) dst[i] = dst[i] + src[i];
  } else {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
      dst[i] = (float)((double)dst[i] + alpha * (double)src[i]);
    }
  }
}

/*
 * Sum over the middle axis of [outer, r, inner] in float64, in the same
 * order as the TypeScript (j ascending for each output).
 */
void kd_sum_mid(const float* x, float* y, double outer_, double r_,
                double inner_) {
  const int64_t outer = (int64_t)outer_;
  const int64_t r = (int64_t)r_;
  const int64_t inner = (int64_t)inner_;
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * r >= PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
      double acc = 0;
      for (int64_t j = 0; j < r; j++) acc += x[o * r + j];
      y[o] = (float)acc;
    }
    return;
  }
  const int64_t chunk = 256;
  const int64_t chunks = (inner + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (outer * r * inner >= PAR_MIN)
  for (int64_t t = 0; t < outer * chunks; t++) {
    const int64_t o = t / chunks;
    const int64_t i0 = (t % chunks) * chunk;
    const int64_t len = inner - i0 < chunk ? inner - i0 : chunk;
    double acc[256];
    for (int64_t i = 0; i < len; i++) acc[i] = 0;
    for (int64_t j = 0; j < r; j++) {
      const float* row = x + (o * r + j) * inner + i0;
      for (int64_t i = 0; i < len; i++) acc[i] += row[i];
    }
    for (int64_t i = 0; i < len; i++) y[o * inner + i0 + i] = (float)acc[i];
  }
}
/* ---- image resampling (src/data/_resize.ts) ----------------------------
 * Pillow 9.4's Resample.c, 8 bits per channel: coefficients in 22-bit fixed
 * point (computed by _resize.ts, which is also the TypeScript oracle), one
 * pass per axis, each rounded and clipped to 8 bits. Integer arithmetic in
 * 32 bits as Pillow's (255 times the weights' absolute sum stays below 2^31
 * for bilinear and bicubic), so the output equals the TypeScript's (and
 * Pillow's) exactly. One thread: the data loader's Workers run one image
 * each.
 */
#define KD_RS_BITS 22
static inline uint8_t kd_rs_clip8(int32_t ss) {
  if (ss >= ((int32_t)255 << KD_RS_BITS)) return 255;
  if (ss <= 0) return 0;
  return (uint8_t)(ss >> KD_RS_BITS);
}

/* Horizontal pass: rows [y0, y0 + rows) of src (in_w x ch bytes a row) to
 * out (out_w x ch a row); bounds[2 * x] = first tap, bounds[2 * x + 1] =
 * taps; weights: ksize a pixel. */
void kd_resample_h_u8(const uint8_t* src, double in_w_, double y0_,
                      double rows_, double ch_, uint8_t* out, double out_w_,
                      const int32_t* bounds, const int32_t* weights,
                      double ksize_) {
  const int64_t in_w = (int64_t)in_w_, y0 = (int64_t)y0_;
  const int64_t rows = (int64_t)rows_, ch = (int64_t)ch_;
  const int64_t out_w = (int64_t)out_w_, ksize = (int64_t)ksize_;
  const int32_t half = (int32_t)1 << (KD_RS_BITS - 1);
  int64_t y = 0;
  if (ch == 1) {
    /* four rows at a time: the taps are loaded once for four sums */
    for (; y + 4 <= rows; y += 4) {
      const uint8_t* r0 = src + (y + y0) * in_w;
      const uint8_t* r1 = r0 + in_w;
      const uint8_t* r2 = r1 + in_w;
      const uint8_t* r3 = r2 + in_w;
      uint8_t* o = out + y * out_w;
      for (int64_t xx = 0; xx < out_w; xx++) {
        const int64_t xmin = bounds[2 * xx], n = bounds[2 * xx + 1];
        const int32_t* k = weights + xx * ksize;
        int32_t s0 = half, s1 = half, s2 = half, s3 = half;
        for (int64_t x = 0; x < n; x++) {
          const int32_t w = k[x];
          s0 += r0[xmin + x] * w;
          s1 += r1[xmin + x] * w;
          s2 += r2[xmin + x] * w;
          s3 += r3[xmin + x] * w;
        }
        o[xx] = kd_rs_clip8(s0);
        o[out_w + xx] = kd_rs_clip8(s1);
        o[2 * out_w + xx] = kd_rs_clip8(s2);
        o[3 * out_w + xx] = kd_rs_clip8(s3);
      }
    }
  }
  for (; y < rows; y++) {
    const uint8_t* row = src + (y + y0) * in_w * ch;
    uint8_t* o = out + y * out_w * ch;
    for (int64_t xx = 0; xx < out_w; xx++) {
      const int64_t xmin = bounds[2 * xx], n = bounds[2 * xx + 1];
      const int32_t* k = weights + xx * ksize;
      if (ch == 1) {
        int32_t ss = half;
        for (int64_t x = 0; x < n; x++) ss += row[xmin + x] * k[x];
        o[xx] = kd_rs_clip8(ss);
      } else if (ch == 3) {
        int32_t s0 = half, s1 = half, s2 = half;
        const uint8_t* p = row + xmin * 3;
        for (int64_t x = 0; x < n; x++) {
          const int32_t w = k[x];
          s0 += p[3 * x] * w;
          s1 += p[3 * x + 1] * w;
          s2 += p[3 * x + 2] * w;
        }
        o[3 * xx] = kd_rs_clip8(s0);
        o[3 * xx + 1] = kd_rs_clip8(s1);
        o[3 * xx + 2] = kd_rs_clip8(s2);
      } else {
        for (int64_t c = 0; c < ch; c++) {
          int32_t ss = half;
          const uint8_t* p = row + xmin * ch + c;
          for (int64_t x = 0; x < n; x++) ss += p[x * ch] * k[x];
          o[xx * ch + c] = kd_rs_clip8(ss);
        }
      }
    }
  }
}

/* Vertical pass: src rows of stride bytes to out_h rows of out; bounds
 * relative to src's first row after subtracting shift. */
void kd_resample_v_u8(const uint8_t* src, double stride_, uint8_t* out,
                      double out_h_, const int32_t* bounds,
                      const int32_t* weights, double ksize_, double shift_) {
  const int64_t stride = (int64_t)stride_, out_h = (int64_t)out_h_;
  const int64_t ksize = (int64_t)ksize_, shift = (int64_t)shift_;
  const int32_t half = (int32_t)1 << (KD_RS_BITS - 1);
  int32_t* acc = (int32_t*)malloc(sizeof(int32_t) * (stride > 0 ? stride : 1));
  if (!acc) return;
  for (int64_t yy = 0; yy < out_h; yy++) {
    const int64_t ymin = bounds[2 * yy] - shift, n = bounds[2 * yy + 1];
    const int32_t* k = weights + yy * ksize;
    for (int64_t i = 0; i < stride; i++) acc[i] = half;
    for (int64_t y = 0; y < n; y++) {
      const int32_t w = k[y];
      const uint8_t* row = src + (ymin + y) * stride;
      for (int64_t i = 0; i < stride; i++) acc[i] += row[i] * w;
    }
    uint8_t* o = out + yy * stride;
    for (int64_t i = 0; i < stride; i++) o[i] = kd_rs_clip8(acc[i]);
  }
  free(acc);
}
/* ---- end of image resampling ------------------------------------------- */
`;
