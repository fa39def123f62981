// rnnkit's CUDA kernels, compiled at run time by NVRTC (see kernels.rs).
//
// Layout: every buffer is time-major and in processing order, as in the CPU loops: `pre`
// (time, batch, gates*units), `hs`/`cs` (time + 1, batch, units). A step kernel handles one
// (row, unit) element per thread: it reads the gates of unit `j` of row `b` and writes that
// unit's states, so one launch per step covers the whole batch. `mask` is one byte per row of
// the step (null without a mask); a masked row keeps its states and repeats its output.
// Activations are passed as codes (ACTIVATION_* below, the order of kernels.rs); a warp always
// takes the same branch.

#define ACTIVATION_LINEAR 0
#define ACTIVATION_TANH 1
#define ACTIVATION_SIGMOID 2
#define ACTIVATION_HARD_SIGMOID 3
#define ACTIVATION_RELU 4
#define ACTIVATION_RELU6 5
#define ACTIVATION_LEAKY_RELU 6
#define ACTIVATION_ELU 7
#define ACTIVATION_SELU 8
#define ACTIVATION_SOFTPLUS 9
#define ACTIVATION_SOFTSIGN 10
#define ACTIVATION_SOFT_SHRINK 11
#define ACTIVATION_SPARSE_PLUS 12
#define ACTIVATION_SILU 13
#define ACTIVATION_HARD_SILU 14
#define ACTIVATION_SQUAREPLUS 15
#define ACTIVATION_GELU 16
#define ACTIVATION_CELU 17
#define ACTIVATION_MISH 18
#define ACTIVATION_TANH_SHRINK 19
#define ACTIVATION_HARD_TANH 20
#define ACTIVATION_EXPONENTIAL 21
#define ACTIVATION_LOG_SIGMOID 22
#define ACTIVATION_HARD_SHRINK 23
#define ACTIVATION_SPARSE_SIGMOID 24

#define SELU_ALPHA 1.6732632423543772f
#define SELU_SCALE 1.0507009873554805f

// A grid-stride loop over `n` elements.
#define FOR_EACH(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (long long)(n); \
         i += (long long)blockDim.x * gridDim.x)

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float softplus(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

__device__ __forceinline__ float hard_sigmoid(float x) { return fminf(fmaxf(x / 6.0f + 0.5f, 0.0f), 1.0f); }

__device__ __forceinline__ float step(bool c) { return c ? 1.0f : 0.0f; }

// Keras 3's definitions, as src/core/activation.rs.
__device__ float activate(int kind, float x) {
    switch (kind) {
    case ACTIVATION_TANH: return tanhf(x);
    case ACTIVATION_SIGMOID: return sigmoid(x);
    case ACTIVATION_HARD_SIGMOID: return hard_sigmoid(x);
    case ACTIVATION_RELU: return fmaxf(x, 0.0f);
    case ACTIVATION_RELU6: return fminf(fmaxf(x, 0.0f), 6.0f);
    case ACTIVATION_LEAKY_RELU: return x >= 0.0f ? x : 0.2f * x;
    case ACTIVATION_ELU: return x > 0.0f ? x : expm1f(x);
    case ACTIVATION_SELU: return x > 0.0f ? SELU_SCALE * x : SELU_SCALE * SELU_ALPHA * expm1f(x);
    case ACTIVATION_SOFTPLUS: return softplus(x);
    case ACTIVATION_SOFTSIGN: return x / (1.0f + fabsf(x));
    case ACTIVATION_SOFT_SHRINK: return x > 0.5f ? x - 0.5f : (x < -0.5f ? x + 0.5f : 0.0f);
    case ACTIVATION_SPARSE_PLUS:
        return x <= -1.0f ? 0.0f : (x >= 1.0f ? x : (x + 1.0f) * (x + 1.0f) / 4.0f);
    case ACTIVATION_SILU: return x * sigmoid(x);
    case ACTIVATION_HARD_SILU: return x * hard_sigmoid(x);
    case ACTIVATION_SQUAREPLUS: return (x + sqrtf(x * x + 4.0f)) / 2.0f;
    case ACTIVATION_GELU: return 0.5f * x * (1.0f + erff(x / 1.4142135623730951f));
    case ACTIVATION_CELU: return fmaxf(x, 0.0f) + fminf(expm1f(x), 0.0f);
    case ACTIVATION_MISH: return x * tanhf(softplus(x));
    case ACTIVATION_TANH_SHRINK: return x - tanhf(x);
    case ACTIVATION_HARD_TANH: return fminf(fmaxf(x, -1.0f), 1.0f);
    case ACTIVATION_EXPONENTIAL: return expf(x);
    case ACTIVATION_LOG_SIGMOID: return -softplus(-x);
    case ACTIVATION_HARD_SHRINK: return fabsf(x) > 0.5f ? x : 0.0f;
    case ACTIVATION_SPARSE_SIGMOID: return fminf(fmaxf((x + 1.0f) / 2.0f, 0.0f), 1.0f);
    default: return x;
    }
}

// f'(x) given y = f(x).
__device__ float derivative(int kind, float x, float y) {
    switch (kind) {
    case ACTIVATION_TANH: return 1.0f - y * y;
    case ACTIVATION_SIGMOID: return y * (1.0f - y);
    case ACTIVATION_HARD_SIGMOID: return step(x > -3.0f && x < 3.0f) / 6.0f;
    case ACTIVATION_RELU: return step(x > 0.0f);
    case ACTIVATION_RELU6: return step(x > 0.0f && x < 6.0f);
    case ACTIVATION_LEAKY_RELU: return x >= 0.0f ? 1.0f : 0.2f;
    case ACTIVATION_ELU: return x > 0.0f ? 1.0f : y + 1.0f;
    case ACTIVATION_SELU: return x > 0.0f ? SELU_SCALE : y + SELU_SCALE * SELU_ALPHA;
    case ACTIVATION_SOFTPLUS: return sigmoid(x);
    case ACTIVATION_SOFTSIGN: {
        float d = 1.0f + fabsf(x);
        return 1.0f / (d * d);
    }
    case ACTIVATION_SOFT_SHRINK: return step(fabsf(x) > 0.5f);
    case ACTIVATION_SPARSE_PLUS: return x <= -1.0f ? 0.0f : (x >= 1.0f ? 1.0f : (x + 1.0f) / 2.0f);
    case ACTIVATION_SILU: {
        float s = sigmoid(x);
        return s + x * s * (1.0f - s);
    }
    case ACTIVATION_HARD_SILU: return hard_sigmoid(x) + x * step(x > -3.0f && x < 3.0f) / 6.0f;
    case ACTIVATION_SQUAREPLUS: return (1.0f + x / sqrtf(x * x + 4.0f)) / 2.0f;
    case ACTIVATION_GELU: {
        float cdf = 0.5f * (1.0f + erff(x / 1.4142135623730951f));
        float pdf = expf(-(x * x) / 2.0f) / 2.5066282746310002f;
        return cdf + x * pdf;
    }
    case ACTIVATION_CELU: return x > 0.0f ? 1.0f : expf(x);
    case ACTIVATION_MISH: {
        float t = tanhf(softplus(x));
        return t + x * (1.0f - t * t) * sigmoid(x);
    }
    case ACTIVATION_TANH_SHRINK: {
        float t = tanhf(x);
        return t * t;
    }
    case ACTIVATION_HARD_TANH: return step(x > -1.0f && x < 1.0f);
    case ACTIVATION_EXPONENTIAL: return y;
    case ACTIVATION_LOG_SIGMOID: return sigmoid(-x);
    case ACTIVATION_HARD_SHRINK: return step(fabsf(x) > 0.5f);
    case ACTIVATION_SPARSE_SIGMOID: return step(x > -1.0f && x < 1.0f) / 2.0f;
    default: return 1.0f;
    }
}

// What one forward step kernel needs besides its cell's buffers.
struct Step {
    int batch, units;
    const unsigned char *mask;  // (batch,) for this step, or null
    const float *h_prev;        // (batch, units)
    float *h_next;
    float *ys;                  // this step's outputs (batch, units), only with a mask
    const float *ys_prev;       // the previous step's outputs, null at the first step
    int zero_output;
    int act, ract;
};

// A masked row keeps its state and repeats its previous output (zeros before the first used
// step, or always with zero_output). Returns whether row b is used at this step.
__device__ __forceinline__ bool carry_if_masked(const Step &s, long long i, int b) {
    bool used = s.mask == nullptr || s.mask[b];
    if (!used) {
        s.h_next[i] = s.h_prev[i];
        if (s.ys) s.ys[i] = (s.zero_output || s.ys_prev == nullptr) ? 0.0f : s.ys_prev[i];
    }
    return used;
}

__device__ __forceinline__ void write_output(const Step &s, long long i, float h) {
    s.h_next[i] = h;
    if (s.ys) s.ys[i] = h;
}

// The forward step of element i = (row b, unit j) of each cell; the kernels below run them over
// the whole batch, one step per launch (`*_forward`) or every step in one launch (`persistent_forward`).

// SimpleRNN: pre holds x·W + b + h₋₁·U.
__device__ void simple_forward_at(const Step &s, float *pre, long long i) {
    int b = i / s.units;
    if (!carry_if_masked(s, i, b)) {
        pre[i] = 0.0f;
        return;
    }
    write_output(s, i, activate(s.act, pre[i]));
}

extern "C" __global__ void simple_forward(Step s, float *pre) {
    FOR_EACH(i, (long long)s.batch * s.units) simple_forward_at(s, pre, i);
}

// LSTM (gates i, f, c, o): pre holds x·W + b + h₋₁·U.
__device__ void lstm_forward_at(const Step &s, float *pre, const float *c_prev, float *c_next, long long i) {
    int u = s.units;
    int b = i / u, j = i % u;
    float *z = pre + (long long)b * 4 * u + j;
    if (!carry_if_masked(s, i, b)) {
        c_next[i] = c_prev[i];
        z[0] = z[u] = z[2 * u] = z[3 * u] = 0.0f;
        return;
    }
    float in = activate(s.ract, z[0]), f = activate(s.ract, z[u]);
    float g = activate(s.act, z[2 * u]), o = activate(s.ract, z[3 * u]);
    float c = f * c_prev[i] + in * g;
    c_next[i] = c;
    write_output(s, i, o * activate(s.act, c));
}

extern "C" __global__ void lstm_forward(Step s, float *pre, const float *c_prev, float *c_next) {
    FOR_EACH(i, (long long)s.batch * s.units) lstm_forward_at(s, pre, c_prev, c_next, i);
}

// GRU, reset after the product: pre holds x·W + b_in, rec holds h₋₁·U (without bias). Adds the
// recurrent products into pre (the h gate's scaled by r), keeps r_h = (h₋₁·U + b_rec)_h.
__device__ void gru_after_forward_at(const Step &s, float *pre, const float *rec, const float *rec_bias,
                                     float *rec_h, long long i) {
    int u = s.units;
    int b = i / u, j = i % u;
    float *p = pre + (long long)b * 3 * u + j;
    const float *r_ = rec + (long long)b * 3 * u + j;
    if (!carry_if_masked(s, i, b)) {
        p[0] = p[u] = p[2 * u] = 0.0f;
        rec_h[i] = 0.0f;
        return;
    }
    float rz = r_[0], rr = r_[u], rh = r_[2 * u];
    if (rec_bias) {
        rz += rec_bias[j];
        rr += rec_bias[u + j];
        rh += rec_bias[2 * u + j];
    }
    float pz = p[0] + rz, pr = p[u] + rr;
    float r = activate(s.ract, pr);
    float ph = p[2 * u] + r * rh;
    float z = activate(s.ract, pz);
    float hh = activate(s.act, ph);
    p[0] = pz;
    p[u] = pr;
    p[2 * u] = ph;
    rec_h[i] = rh;
    write_output(s, i, z * s.h_prev[i] + (1.0f - z) * hh);
}

extern "C" __global__ void gru_after_forward(Step s, float *pre, const float *rec, const float *rec_bias,
                                             float *rec_h) {
    FOR_EACH(i, (long long)s.batch * s.units) gru_after_forward_at(s, pre, rec, rec_bias, rec_h, i);
}

// GRU, reset before the product, first half: adds the z and r products (rec) into pre and
// writes q = r ⊙ h₋₁ ⊙ m_h, the input of the h-gate product.
extern "C" __global__ void gru_before_gates(Step s, float *pre, const float *rec, const float *mask_h,
                                            float *q) {
    int u = s.units;
    FOR_EACH(i, (long long)s.batch * u) {
        int b = i / u, j = i % u;
        float *p = pre + (long long)b * 3 * u + j;
        const float *r_ = rec + (long long)b * 3 * u + j;
        p[0] += r_[0];
        p[u] += r_[u];
        float r = activate(s.ract, p[u]);
        q[i] = r * s.h_prev[i] * (mask_h ? mask_h[i] : 1.0f);
    }
}

// GRU, reset before the product, second half: rec's h block holds q·U_h.
extern "C" __global__ void gru_before_output(Step s, float *pre, const float *rec) {
    int u = s.units;
    FOR_EACH(i, (long long)s.batch * u) {
        int b = i / u, j = i % u;
        float *p = pre + (long long)b * 3 * u + j;
        if (!carry_if_masked(s, i, b)) {
            p[0] = p[u] = p[2 * u] = 0.0f;
            continue;
        }
        p[2 * u] += rec[(long long)b * 3 * u + 2 * u + j];
        float z = activate(s.ract, p[0]);
        write_output(s, i, z * s.h_prev[i] + (1.0f - z) * activate(s.act, p[2 * u]));
    }
}

// What one backward step kernel needs besides its cell's buffers.
struct BackStep {
    int batch, units;
    const unsigned char *mask;
    const float *dy;         // the output gradient of this step, row b at dy[b * dy_stride], or null
    long long dy_stride;
    float *carry;            // (batch, units) output gradient waiting for the next used step
    const float *dh;         // (batch, units) gradient of this step's h from later steps
    float *dh_prev;          // (batch, units) written: the gradient of h₋₁ before the products
    const float *h_prev;
    int zero_output;
    int act, ract;
};

// Adds this step's output gradient to the carry. A masked row passes its state gradient through
// (and drops the carry with zero_output: its output was zeros); a used row takes the carry into
// its h gradient, returned in g. Returns whether row b is used.
__device__ __forceinline__ bool take_gradient(const BackStep &s, long long i, int b, int j, float *g) {
    float carry = s.carry[i] + (s.dy ? s.dy[b * s.dy_stride + j] : 0.0f);
    bool used = s.mask == nullptr || s.mask[b];
    if (!used) {
        s.carry[i] = s.zero_output ? 0.0f : carry;
        s.dh_prev[i] = s.dh[i];
        return false;
    }
    s.carry[i] = 0.0f;
    *g = s.dh[i] + carry;
    return true;
}

// The backward step of element i = (row b, unit j) of each cell, run per step (`*_backward`) or
// for every step in one launch (`persistent_backward`).

__device__ void simple_backward_at(const BackStep &s, const float *pre, float *dpre, long long i) {
    int b = i / s.units, j = i % s.units;
    float g;
    if (!take_gradient(s, i, b, j, &g)) {
        dpre[i] = 0.0f;
        return;
    }
    float a = pre[i];
    dpre[i] = g * derivative(s.act, a, activate(s.act, a));
    s.dh_prev[i] = 0.0f;
}

extern "C" __global__ void simple_backward(BackStep s, const float *pre, float *dpre) {
    FOR_EACH(i, (long long)s.batch * s.units) simple_backward_at(s, pre, dpre, i);
}

// dc enters as the gradient of c and leaves as that of c₋₁.
__device__ void lstm_backward_at(const BackStep &s, const float *pre, const float *c_prev, const float *c,
                                 float *dc, float *dpre, long long i) {
    int u = s.units;
    int b = i / u, j = i % u;
    const float *z = pre + (long long)b * 4 * u + j;
    float *d = dpre + (long long)b * 4 * u + j;
    float g;
    if (!take_gradient(s, i, b, j, &g)) {
        d[0] = d[u] = d[2 * u] = d[3 * u] = 0.0f;
        return;
    }
    float in = activate(s.ract, z[0]), f = activate(s.ract, z[u]);
    float gg = activate(s.act, z[2 * u]), o = activate(s.ract, z[3 * u]);
    float ac = activate(s.act, c[i]);
    float dcj = dc[i] + g * o * derivative(s.act, c[i], ac);
    d[3 * u] = g * ac * derivative(s.ract, z[3 * u], o);
    d[0] = dcj * gg * derivative(s.ract, z[0], in);
    d[u] = dcj * c_prev[i] * derivative(s.ract, z[u], f);
    d[2 * u] = dcj * in * derivative(s.act, z[2 * u], gg);
    dc[i] = dcj * f;
    s.dh_prev[i] = 0.0f;
}

extern "C" __global__ void lstm_backward(BackStep s, const float *pre, const float *c_prev, const float *c,
                                         float *dc, float *dpre) {
    FOR_EACH(i, (long long)s.batch * s.units) lstm_backward_at(s, pre, c_prev, c, dc, dpre, i);
}

// GRU, reset after: dpre gets the input-side gradients, drec the recurrent side's
// [dz, dr, dpre_h ⊙ r]; dh_prev the direct path dh ⊙ z.
__device__ void gru_after_backward_at(const BackStep &s, const float *pre, const float *rec_h, float *dpre,
                                      float *drec, long long i) {
    int u = s.units;
    int b = i / u, j = i % u;
    const float *p = pre + (long long)b * 3 * u + j;
    float *d = dpre + (long long)b * 3 * u + j;
    float *dr_ = drec + (long long)b * 3 * u + j;
    float g;
    if (!take_gradient(s, i, b, j, &g)) {
        d[0] = d[u] = d[2 * u] = 0.0f;
        dr_[0] = dr_[u] = dr_[2 * u] = 0.0f;
        return;
    }
    float z = activate(s.ract, p[0]), r = activate(s.ract, p[u]), hh = activate(s.act, p[2 * u]);
    float da = g * (1.0f - z) * derivative(s.act, p[2 * u], hh);
    float dz = g * (s.h_prev[i] - hh) * derivative(s.ract, p[0], z);
    float dr = da * rec_h[i] * derivative(s.ract, p[u], r);
    d[0] = dz;
    d[u] = dr;
    d[2 * u] = da;
    dr_[0] = dz;
    dr_[u] = dr;
    dr_[2 * u] = da * r;
    s.dh_prev[i] = g * z;
}

extern "C" __global__ void gru_after_backward(BackStep s, const float *pre, const float *rec_h, float *dpre,
                                              float *drec) {
    FOR_EACH(i, (long long)s.batch * s.units) gru_after_backward_at(s, pre, rec_h, dpre, drec, i);
}

// GRU, reset before, first half: the z and h-gate gradients and the direct path dh ⊙ z. The r
// gradient waits for dq = dpre_h · U_hᵀ.
extern "C" __global__ void gru_before_backward_gates(BackStep s, const float *pre, float *dpre) {
    int u = s.units;
    FOR_EACH(i, (long long)s.batch * u) {
        int b = i / u, j = i % u;
        const float *p = pre + (long long)b * 3 * u + j;
        float *d = dpre + (long long)b * 3 * u + j;
        float g;
        if (!take_gradient(s, i, b, j, &g)) {
            d[0] = d[u] = d[2 * u] = 0.0f;
            continue;
        }
        float z = activate(s.ract, p[0]), hh = activate(s.act, p[2 * u]);
        d[2 * u] = g * (1.0f - z) * derivative(s.act, p[2 * u], hh);
        d[0] = g * (s.h_prev[i] - hh) * derivative(s.ract, p[0], z);
        s.dh_prev[i] = g * z;
    }
}

// GRU, reset before, second half (used rows): from dq, the r gradient, the path through q into
// dh_prev, and q itself (for the h gate's weight gradient).
extern "C" __global__ void gru_before_backward_reset(int batch, int units, const unsigned char *mask, int ract,
                                                     const float *pre, const float *h_prev, const float *mask_h,
                                                     const float *dq, float *dpre, float *dh_prev, float *q) {
    int u = units;
    FOR_EACH(i, (long long)batch * u) {
        int b = i / u, j = i % u;
        if (mask && !mask[b]) continue;
        float m = mask_h ? mask_h[i] : 1.0f;
        float pr = pre[(long long)b * 3 * u + u + j];
        float r = activate(ract, pr);
        q[i] = r * h_prev[i] * m;
        dpre[(long long)b * 3 * u + u + j] = dq[i] * h_prev[i] * m * derivative(ract, pr, r);
        dh_prev[i] += dq[i] * r * m;
    }
}

// The cells the persistent kernels run (GRU with the reset before its product needs two
// products per step and stays per-step).
#define CELL_SIMPLE_RNN 0
#define CELL_LSTM 1
#define CELL_GRU_AFTER 2

__device__ __forceinline__ int cell_width(int cell, int units) {
    return (cell == CELL_LSTM ? 4 : cell == CELL_GRU_AFTER ? 3 : 1) * units;
}

// Copies the first n floats of src into shared memory, for the whole block.
__device__ __forceinline__ void load_shared(float *shared, const float *src, int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) shared[i] = src[i];
    __syncthreads();
}

// The whole forward time loop in one launch, for recurrent kernels (mostly) on chip (the trick of
// persistent RNNs): block x owns batch rows [x·rows, (x + 1)·rows) for every step (rows are
// independent, so no grid-wide barrier is needed), keeps the first `kept` rows of U in shared
// memory (the others come from L2) and runs per step its rows' product h₋₁·U (each (row, column)
// by one thread, reading consecutive columns of U) and then the cell's element-wise step. `s`
// holds step 0's pointers (h_prev and h_next: hs and hs + batch·units); `rdrop` are the
// (gates, batch, units) recurrent dropout multipliers or null.
extern "C" __global__ void persistent_forward(Step s, int cell, int steps, int rows, float *pre, float *cs,
                                              float *rec, const float *rec_bias, float *rec_h,
                                              const float *recurrent_kernel, int kept, const float *rdrop) {
    extern __shared__ float kernel[];
    int u = s.units, width = cell_width(cell, u);
    load_shared(kernel, recurrent_kernel, kept * width);
    int first = blockIdx.x * rows;
    rows = min(rows, s.batch - first);
    long long plane = (long long)s.batch * u;
    for (int t = 0; t < steps; t++) {
        Step st = s;
        st.mask = s.mask ? s.mask + (long long)t * s.batch : nullptr;
        st.h_prev = s.h_prev + t * plane;
        st.h_next = s.h_next + t * plane;
        st.ys = s.ys ? s.ys + t * plane : nullptr;
        st.ys_prev = s.ys && t > 0 ? s.ys + (t - 1) * plane : nullptr;
        float *pre_t = pre + (long long)t * s.batch * width;
        for (int e = threadIdx.x; e < rows * width; e += blockDim.x) {
            int b = first + e / width, c = e % width;
            const float *h = st.h_prev + (long long)b * u;
            const float *m = rdrop ? rdrop + ((long long)(c / u) * s.batch + b) * u : nullptr;
            float acc = 0.0f;
            if (m) {
                for (int k = 0; k < kept; k++) acc += h[k] * m[k] * kernel[k * width + c];
                for (int k = kept; k < u; k++) acc += h[k] * m[k] * recurrent_kernel[k * width + c];
            } else {
                for (int k = 0; k < kept; k++) acc += h[k] * kernel[k * width + c];
                for (int k = kept; k < u; k++) acc += h[k] * recurrent_kernel[k * width + c];
            }
            if (cell == CELL_GRU_AFTER) {
                rec[(long long)b * width + c] = acc;
            } else {
                pre_t[(long long)b * width + c] += acc;
            }
        }
        __syncthreads();
        for (int e = threadIdx.x; e < rows * u; e += blockDim.x) {
            long long i = (long long)first * u + e;
            if (cell == CELL_LSTM) {
                lstm_forward_at(st, pre_t, cs + t * plane, cs + (t + 1) * plane, i);
            } else if (cell == CELL_GRU_AFTER) {
                gru_after_forward_at(st, pre_t, rec, rec_bias, rec_h + t * plane, i);
            } else {
                simple_forward_at(st, pre_t, i);
            }
        }
        __syncthreads();
    }
}

// The whole backward time loop in one launch, as persistent_forward: the first `kept` rows of Uᵀ
// (`recurrent_kernel_t`, (gates·units, units)) in shared memory, per step the cell's element-wise
// backward for the block's rows, then dh₋₁ += Σ_g (d_g·U_gᵀ) ⊙ m_g for them (each (row, unit) by
// one thread, reading consecutive units of Uᵀ). `s` holds step 0's pointers; dh and dh_prev
// swap every step (the host knows where the result ends).
// `dy` is the (batch, steps, units) output gradient, or with `last_only` the last step's
// (batch, units), or null.
extern "C" __global__ void persistent_backward(BackStep s, int cell, int steps, int rows, const float *pre,
                                               const float *cs, float *dc, const float *rec_h, float *dpre,
                                               float *drec, const float *dy, int last_only,
                                               const float *recurrent_kernel_t, int kept, const float *rdrop) {
    extern __shared__ float kernel_t[];
    int u = s.units, width = cell_width(cell, u);
    load_shared(kernel_t, recurrent_kernel_t, kept * u);
    int first = blockIdx.x * rows;
    rows = min(rows, s.batch - first);
    long long plane = (long long)s.batch * u;
    float *dh = (float *)s.dh, *dh_prev = s.dh_prev;
    for (int t = steps - 1; t >= 0; t--) {
        BackStep st = s;
        st.mask = s.mask ? s.mask + (long long)t * s.batch : nullptr;
        st.dy = dy == nullptr ? nullptr : (last_only ? (t == steps - 1 ? dy : nullptr) : dy + (long long)t * u);
        st.dh = dh;
        st.dh_prev = dh_prev;
        st.h_prev = s.h_prev + t * plane;
        long long at = (long long)t * s.batch * width;
        for (int e = threadIdx.x; e < rows * u; e += blockDim.x) {
            long long i = (long long)first * u + e;
            if (cell == CELL_LSTM) {
                lstm_backward_at(st, pre + at, cs + t * plane, cs + (t + 1) * plane, dc, dpre + at, i);
            } else if (cell == CELL_GRU_AFTER) {
                gru_after_backward_at(st, pre + at, rec_h + t * plane, dpre + at, drec + at, i);
            } else {
                simple_backward_at(st, pre + at, dpre + at, i);
            }
        }
        __syncthreads();
        const float *d = (cell == CELL_GRU_AFTER ? drec : dpre) + at;
        for (int e = threadIdx.x; e < rows * u; e += blockDim.x) {
            int b = first + e / u, k = e % u;
            const float *row = d + (long long)b * width;
            float acc = 0.0f;
            for (int c = 0; c < width; c++) {
                float w = c < kept ? kernel_t[c * u + k] : recurrent_kernel_t[(long long)c * u + k];
                acc += row[c] * w * (rdrop ? rdrop[((long long)(c / u) * s.batch + b) * u + k] : 1.0f);
            }
            dh_prev[(long long)b * u + k] += acc;
        }
        __syncthreads();
        float *swap = dh;
        dh = dh_prev;
        dh_prev = swap;
    }
}

// dst (q_len, p_len, f) from src (p_len, q_len, f): dst[q][p] = src[p'][q'], where p' and q'
// run backwards when flip_p / flip_q.
extern "C" __global__ void swap_leading(int p_len, int q_len, int f, const float *src, float *dst, int flip_p,
                                        int flip_q) {
    FOR_EACH(i, (long long)p_len * q_len * f) {
        long long row = i / f;
        int k = i % f;
        int q = row / p_len, p = row % p_len;
        int ps = flip_p ? p_len - 1 - p : p, qs = flip_q ? q_len - 1 - q : q;
        dst[i] = src[((long long)ps * q_len + qs) * f + k];
    }
}

// out[i] = row[i % width]: every row a copy of `row`.
extern "C" __global__ void tile_row(long long n, int width, const float *row, float *out) {
    FOR_EACH(i, n) out[i] = row[i % width];
}

extern "C" __global__ void fill(long long n, float value, float *out) {
    FOR_EACH(i, n) out[i] = value;
}

// out[i] = a[i] · m[i % period] (a time-major array times a per-sample multiplier).
extern "C" __global__ void scale(long long n, long long period, const float *a, const float *m, float *out) {
    FOR_EACH(i, n) out[i] = a[i] * m[i % period];
}

// out[i] += a[i] · m[i % period].
extern "C" __global__ void scale_add(long long n, long long period, const float *a, const float *m, float *out) {
    FOR_EACH(i, n) out[i] += a[i] * m[i % period];
}
