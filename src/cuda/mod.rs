//! The GPU path (feature `cuda`): cuBLAS for every product, NVRTC-compiled kernels for the
//! element-wise step math.
//!
//! CUDA's libraries are loaded at run time (cudarc's dynamic loading), so the crate builds and
//! runs without them: [`gpu`] then says why there is no GPU and the callers use the CPU. The
//! buffers follow the CPU loops' layout (time-major, processing order); matrices are row-major,
//! which `Lane::gemm` maps onto cuBLAS's column-major convention. Only `f32` runs here.

pub(crate) mod kernels;
pub mod sequence;

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::CudaBlas;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DriverError, LaunchConfig,
    PinnedHostSlice,
};

use crate::core::cell::CellKind;
use crate::error::{Error, Result};
use kernels::Functions;

pub use sequence::DeviceSaved;

/// The first GPU, with its compiled kernels and two lanes (a stream and a cuBLAS handle each:
/// a bidirectional pair runs one direction in each).
pub struct Gpu {
    name: String,
    ctx: Arc<CudaContext>,
    /// Shared memory a block may use (bytes), and the number of multiprocessors.
    shared_memory: usize,
    multiprocessors: usize,
    functions: Functions,
    lanes: [Mutex<Lane>; 2],
}

/// One stream, the cuBLAS handle bound to it and a page-locked staging buffer for copies; a
/// call holds its lane for its whole run and synchronizes the stream before it ends.
pub struct Lane {
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    staging: RefCell<Staging>,
}

/// Page-locked host memory that the call's copies pass through: the GPU copies from and to it
/// at full bus speed and without blocking, where pageable numpy memory is copied in small
/// synchronous pieces. `used` floats are taken by copies queued since the last synchronize.
struct Staging {
    buffer: Option<PinnedHostSlice<f32>>,
    used: usize,
}

static GPU: OnceLock<std::result::Result<Gpu, String>> = OnceLock::new();

/// The GPU, set up on first use, or why there is none (no CUDA libraries, no device, a
/// failure while compiling the kernels...). Never panics.
pub fn gpu() -> std::result::Result<&'static Gpu, &'static str> {
    GPU.get_or_init(|| {
        std::panic::catch_unwind(open)
            .unwrap_or_else(|_| Err("CUDA failed while starting up".to_string()))
    })
    .as_ref()
    .map_err(String::as_str)
}

/// Compiles the kernels with NVRTC for compute capability `major.minor` and returns the PTX's
/// size in bytes; needs NVRTC, not a GPU. The error is NVRTC's log, or says NVRTC is missing.
pub fn ptx_size(major: i32, minor: i32) -> std::result::Result<usize, String> {
    if !has_nvrtc() {
        return Err("NVRTC (libnvrtc) could not be loaded".into());
    }
    kernels::compile(major, minor).map(|ptx| ptx.to_src().len())
}

/// Whether NVRTC, CUDA's run-time compiler, can be loaded (it needs no GPU).
pub fn has_nvrtc() -> bool {
    // SAFETY: only tries to load the library.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

fn open() -> std::result::Result<Gpu, String> {
    // SAFETY: each call only tries to load a library; nothing below runs without them.
    let (driver, blas) = unsafe {
        (
            cudarc::driver::sys::is_culib_present(),
            cudarc::cublas::sys::is_culib_present(),
        )
    };
    let missing: Vec<&str> = [
        ("the CUDA driver", driver),
        ("cuBLAS", blas),
        ("NVRTC", has_nvrtc()),
    ]
    .into_iter()
    .filter(|(_, found)| !found)
    .map(|(name, _)| name)
    .collect();
    if !missing.is_empty() {
        return Err(format!("CUDA libraries not found: {}", missing.join(", ")));
    }
    let count = CudaContext::device_count().map_err(|e| format!("CUDA driver: {e:?}"))?;
    if count == 0 {
        return Err("the CUDA driver sees no GPU".into());
    }
    let ctx = CudaContext::new(0).map_err(|e| format!("opening GPU 0: {e:?}"))?;
    // SAFETY: every call synchronizes its lane's stream before it returns, so no buffer is
    // used by two streams at once or freed while in use: cudarc's event tracking is not needed.
    unsafe { ctx.disable_event_tracking() };
    let name = ctx.name().unwrap_or_else(|_| "GPU".into());
    let (major, minor) = ctx
        .compute_capability()
        .map_err(|e| format!("compute capability: {e:?}"))?;
    let ptx = kernels::compile(major, minor)?;
    let module = ctx
        .load_module(ptx)
        .map_err(|e| format!("loading the kernels: {e:?}"))?;
    let functions = Functions::load(&module)?;
    let attribute = |a| {
        ctx.attribute(a)
            .map(|v| v.max(0) as usize)
            .map_err(|e| format!("device attribute: {e:?}"))
    };
    use cudarc::driver::sys::CUdevice_attribute as A;
    let shared_memory = attribute(A::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?;
    let multiprocessors = attribute(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
    for f in [
        &functions.persistent_forward,
        &functions.persistent_backward,
    ] {
        f.set_attribute(
            cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            i32::try_from(shared_memory).unwrap_or(i32::MAX),
        )
        .map_err(|e| format!("shared memory limit: {e:?}"))?;
    }
    let lane = || -> std::result::Result<Mutex<Lane>, String> {
        let stream = ctx.new_stream().map_err(|e| format!("stream: {e:?}"))?;
        let blas = CudaBlas::new(stream.clone()).map_err(|e| format!("cuBLAS: {e:?}"))?;
        let staging = RefCell::new(Staging {
            buffer: None,
            used: 0,
        });
        Ok(Mutex::new(Lane {
            stream,
            blas,
            staging,
        }))
    };
    Ok(Gpu {
        name: format!("{name} (compute capability {major}.{minor})"),
        ctx: ctx.clone(),
        shared_memory,
        multiprocessors,
        functions,
        lanes: [lane()?, lane()?],
    })
}

impl Gpu {
    /// The device's name and compute capability.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How a persistent kernel holds a `rows × cols` float matrix (the recurrent kernel, or its
    /// transpose): the rows it keeps in shared memory and their bytes, when it runs `kind` and
    /// at least three quarters of the rows fit (it reads the others from L2); else `None` and
    /// the time loop launches per step. `RNNKIT_GPU_STEPWISE=1` forces per-step launches (to
    /// compare the two).
    fn persistent_split(&self, kind: CellKind, rows: usize, cols: usize) -> Option<(usize, usize)> {
        let row_bytes = cols * std::mem::size_of::<f32>();
        let kept = (self.shared_memory / row_bytes.max(1)).min(rows);
        let stepwise = std::env::var_os("RNNKIT_GPU_STEPWISE").is_some_and(|v| v == "1");
        let runs = kernels::persistent_cell_code(kind).is_some() && !stepwise;
        (runs && 4 * kept >= 3 * rows).then_some((kept, kept * row_bytes))
    }

    /// Batch rows per block of a persistent kernel: one while there are at most two blocks per
    /// multiprocessor.
    fn rows_per_block(&self, batch: usize) -> usize {
        batch.div_ceil(2 * self.multiprocessors.max(1)).max(1)
    }

    /// Lane 0 for a pass that runs alone, else the lane of the pair's direction, with the
    /// GPU's context made current on this thread (cuBLAS calls need it).
    fn lane(&self, lane: Option<usize>) -> Result<MutexGuard<'_, Lane>> {
        self.ctx
            .bind_to_thread()
            .map_err(driver_err("binding the GPU to this thread"))?;
        let lane = &self.lanes[lane.unwrap_or(0) % 2];
        Ok(lane.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

/// A driver error as the core's error (out of memory gets its own, naming `what`).
fn driver_err(what: &str) -> impl Fn(DriverError) -> Error + '_ {
    move |e| {
        if e.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
            Error::DeviceMemory(what.to_string())
        } else {
            Error::Device(format!("{what}: {e:?}"))
        }
    }
}

/// Copies `src` into `dst`, large copies in pieces on rayon's threads (one core cannot keep up
/// with the bus).
fn copy(dst: &mut [f32], src: &[f32]) {
    use rayon::prelude::*;
    const PIECE: usize = 1 << 18;
    if src.len() < 2 * PIECE {
        dst.copy_from_slice(src);
    } else {
        dst.par_chunks_mut(PIECE)
            .zip(src.par_chunks(PIECE))
            .for_each(|(d, s)| d.copy_from_slice(s));
    }
}

/// A device buffer's address.
fn ptr<T>(buffer: &CudaSlice<T>) -> u64 {
    buffer.device_ptr(buffer.stream()).0
}

/// Threads per block of the element-wise kernels.
const BLOCK: u32 = 256;

impl Lane {
    /// A zeroed buffer of `n` floats.
    fn zeros(&self, n: usize, what: &str) -> Result<CudaSlice<f32>> {
        self.stream.alloc_zeros(n.max(1)).map_err(driver_err(what))
    }

    /// A buffer of `n` floats for the caller to fill completely before reading it.
    fn uninit(&self, n: usize, what: &str) -> Result<CudaSlice<f32>> {
        // SAFETY: every caller writes all `n` elements (a kernel or a product) before any read.
        unsafe { self.stream.alloc(n.max(1)) }.map_err(driver_err(what))
    }

    /// A device copy of `host`, through the staging buffer.
    fn upload(&self, host: &[f32], what: &str) -> Result<CudaSlice<f32>> {
        let mut dst = self.uninit(host.len(), what)?;
        self.write(host, &mut dst, 0)?;
        Ok(dst)
    }

    /// A device copy of the bytes `host` (small: copied directly).
    fn upload_bytes(&self, host: &[u8], what: &str) -> Result<CudaSlice<u8>> {
        if host.is_empty() {
            // SAFETY: a buffer of one element that nothing reads.
            return unsafe { self.stream.alloc(1) }.map_err(driver_err(what));
        }
        self.stream.clone_htod(host).map_err(driver_err(what))
    }

    /// `len` floats of room in the staging buffer, from the returned offset on. A full buffer is
    /// replaced by a larger one once the copies that use it are done.
    fn stage(&self, len: usize) -> Result<usize> {
        let (used, capacity) = {
            let staging = self.staging.borrow();
            (staging.used, staging.buffer.as_ref().map_or(0, |b| b.len()))
        };
        if used + len > capacity {
            // Once the queued copies are done, the whole buffer is free.
            self.synchronize()?;
        }
        let mut staging = self.staging.borrow_mut();
        if len > capacity {
            let size = len.max(2 * capacity).max(1 << 16);
            // SAFETY: page-locked host memory, only read and written through `staging`.
            let buffer = unsafe { self.stream.context().alloc_pinned::<f32>(size) }
                .map_err(driver_err("page-locked staging memory"))?;
            staging.buffer = Some(buffer);
        }
        let offset = staging.used;
        staging.used += len;
        Ok(offset)
    }

    /// Copies `host` into `dst` from element `offset` on, through the staging buffer.
    fn write(&self, host: &[f32], dst: &mut CudaSlice<f32>, offset: usize) -> Result<()> {
        if host.is_empty() {
            return Ok(());
        }
        let at = self.stage(host.len())?;
        let mut staging = self.staging.borrow_mut();
        let buffer = staging.buffer.as_mut().expect("stage allocates the buffer");
        let pinned = &mut buffer
            .as_mut_slice()
            .map_err(driver_err("page-locked staging memory"))?[at..at + host.len()];
        copy(pinned, host);
        self.stream
            .memcpy_htod(&*pinned, &mut dst.slice_mut(offset..offset + host.len()))
            .map_err(driver_err("copying inputs to the GPU"))
    }

    /// Copies `(buffer, offset, len)` ranges to new host vectors: all queued at once through the
    /// staging buffer, then one synchronize (every queued kernel has then finished).
    fn download(&self, ranges: &[(&CudaSlice<f32>, usize, usize)]) -> Result<Vec<Vec<f32>>> {
        let total = ranges.iter().map(|r| r.2).sum();
        let first = self.stage(total)?;
        {
            let mut staging = self.staging.borrow_mut();
            let buffer = staging.buffer.as_mut().expect("stage allocates the buffer");
            let pinned = buffer
                .as_mut_slice()
                .map_err(driver_err("page-locked staging memory"))?;
            let mut at = first;
            for &(src, offset, len) in ranges.iter().filter(|r| r.2 > 0) {
                self.stream
                    .memcpy_dtoh(&src.slice(offset..offset + len), &mut pinned[at..at + len])
                    .map_err(driver_err("copying results to the host"))?;
                at += len;
            }
        }
        self.synchronize()?;
        let staging = self.staging.borrow();
        let pinned = match staging.buffer.as_ref() {
            Some(b) => b
                .as_slice()
                .map_err(driver_err("page-locked staging memory"))?,
            None => &[],
        };
        let mut at = first;
        Ok(ranges
            .iter()
            .map(|&(_, _, len)| {
                at += len;
                let mut host = vec![0.0f32; len];
                copy(&mut host, &pinned[at - len..at]);
                host
            })
            .collect())
    }

    /// Waits for the stream's work; reports any error a kernel raised. The staging buffer is
    /// free again.
    fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(driver_err("running the kernels"))?;
        self.staging.borrow_mut().used = 0;
        Ok(())
    }

    /// Launches the element-wise kernel `f` over `n` elements with `args` (each a reference to
    /// a value of the kernel's parameter type, in order).
    fn launch(&self, f: &CudaFunction, n: usize, args: &[&dyn KernelArg]) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let blocks = n.div_ceil(BLOCK as usize).clamp(1, 1 << 16);
        self.launch_blocks(f, blocks, 0, args)
    }

    /// Launches `f` on `blocks` blocks of [`BLOCK`] threads with `shared` bytes of dynamic
    /// shared memory each.
    fn launch_blocks(
        &self,
        f: &CudaFunction,
        blocks: usize,
        shared: usize,
        args: &[&dyn KernelArg],
    ) -> Result<()> {
        let mut builder = self.stream.launch_builder(f);
        for arg in args {
            arg.push(&mut builder);
        }
        let config = LaunchConfig {
            grid_dim: (u32::try_from(blocks).unwrap_or(u32::MAX), 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: u32::try_from(shared).unwrap_or(u32::MAX),
        };
        // SAFETY: the kernels read and write within the sizes the callers allocated, and every
        // argument matches the kernel's parameter list.
        unsafe { builder.launch(config) }
            .map(|_| ())
            .map_err(driver_err("launching a kernel"))
    }

    /// Row-major `c (m × n) = op(a) · op(b) + beta · c`, `op` transposing where `ta` / `tb`;
    /// `lda`, `ldb`, `ldc` are the row strides of the stored matrices.
    #[allow(clippy::too_many_arguments)] // the BLAS parameter list
    fn gemm(
        &self,
        (ta, tb): (bool, bool),
        (m, n, k): (usize, usize, usize),
        (a, lda): (u64, usize),
        (b, ldb): (u64, usize),
        beta: f32,
        (c, ldc): (u64, usize),
    ) -> Result<()> {
        if m == 0 || n == 0 {
            return Ok(());
        }
        let op = |t: bool| {
            if t {
                cublasOperation_t::CUBLAS_OP_T
            } else {
                cublasOperation_t::CUBLAS_OP_N
            }
        };
        let int = |v: usize| {
            i32::try_from(v).map_err(|_| {
                Error::Device(format!(
                    "a product dimension of {v} exceeds cuBLAS's 32-bit limit"
                ))
            })
        };
        let alpha = 1.0f32;
        // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a row-major matrix's
        // storage is its transpose in column-major: B and A swap places, flags unchanged.
        // SAFETY: the callers pass buffers holding the matrices these sizes and strides span.
        unsafe {
            cudarc::cublas::result::sgemm(
                *self.blas.handle(),
                op(tb),
                op(ta),
                int(n)?,
                int(m)?,
                int(k)?,
                &raw const alpha,
                b as *const f32,
                int(ldb)?,
                a as *const f32,
                int(lda)?,
                &raw const beta,
                c as *mut f32,
                int(ldc)?,
            )
        }
        .map_err(|e| Error::Device(format!("cuBLAS sgemm: {e:?}")))
    }
}

/// A value that can be a kernel argument.
trait KernelArg {
    fn push<'a>(&'a self, builder: &mut cudarc::driver::LaunchArgs<'a>);
}

impl<T: cudarc::driver::DeviceRepr> KernelArg for T {
    fn push<'a>(&'a self, builder: &mut cudarc::driver::LaunchArgs<'a>) {
        use cudarc::driver::PushKernelArg;
        builder.arg(self);
    }
}
