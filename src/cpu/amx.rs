//! Intel AMX (Advanced Matrix Extensions): the CPU's tile registers and its bf16 matrix unit,
//! which multiplies a 16 × 32 bf16 tile by a 32 × 16 one into 16 × 16 f32 sums in one
//! instruction (`tdpbf16ps`, about 16 times the f32 FMA rate of AVX-512).
//!
//! AMX's intrinsics are not stable Rust, so the tile instructions are written with `asm!`,
//! naming the eight tile registers `tmm0`–`tmm7` directly (the compiler neither allocates nor
//! touches them). Linux hands a process the tile registers only after it asks
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`), once, before the first tile instruction: [`available`]
//! does both the CPU check and the request.

use std::sync::OnceLock;

/// Whether the CPU has AMX-BF16 and the OS lets this process use the tiles (asked once).
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    use std::arch::x86_64::__cpuid_count;
    // CPUID.(7,0):EDX: bit 22 AMX-BF16, bit 24 AMX-TILE; CPUID.1:ECX bit 27: OSXSAVE (the OS
    // manages extended state, so XCR0 can be read).
    let leaf7 = __cpuid_count(7, 0);
    let leaf1 = __cpuid_count(1, 0);
    if leaf7.edx & (1 << 22) == 0 || leaf7.edx & (1 << 24) == 0 || leaf1.ecx & (1 << 27) == 0 {
        return false;
    }
    // XCR0 bits 17 and 18: the OS saves the tile configuration and data.
    // SAFETY: OSXSAVE is set, so `xgetbv` exists and XCR0 is readable.
    if unsafe { xcr0() } & (0b11 << 17) != 0b11 << 17 {
        return false;
    }
    extern "C" {
        fn syscall(number: i64, ...) -> i64;
    }
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    // SAFETY: arch_prctl with these arguments only changes the process's permission state.
    unsafe { syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    std::arch::x86_64::_xgetbv(0)
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// Rows of a tile (and of an f32 result tile).
pub const TILE_ROWS: usize = 16;
/// bf16 values in a row of an A tile: 64 bytes, the widest tile row.
pub const TILE_K: usize = 32;
/// Bytes of a tile row.
const ROW_BYTES: usize = 64;

/// One 16 × 16 f32 result tile in memory: its first element and its row stride in bytes.
#[derive(Clone, Copy, Debug)]
pub struct CTile {
    pub ptr: *mut f32,
    pub stride: usize,
}

/// The operands of one block of up to 2 × 2 result tiles over `chunks` steps of [`TILE_K`]:
/// row tile `i`'s chunk `kc` of `a` at `a[i] + kc · 64` bytes (rows `a_stride` bytes apart);
/// column tile `j`'s chunk `kc` of the VNNI-packed `b` at `b[j] + kc · 1024` bytes (16 rows of
/// 64 bytes: 16 pairs of bf16 along `k` for each of 16 columns).
pub struct Block {
    pub a: [*const u16; 2],
    pub a_stride: usize,
    pub b: [*const u16; 2],
    pub chunks: usize,
}

/// Loads the palette-1 configuration (every tile 16 rows of 64 bytes), runs `body`, and releases
/// the tiles (so a context switch saves no tile data).
///
/// # Safety
/// [`available`] must have returned true.
#[cfg(target_arch = "x86_64")]
pub unsafe fn with_tiles(body: impl FnOnce()) {
    #[repr(C, align(64))]
    struct Config {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        colsb: [u16; 16],
        rows: [u8; 16],
    }
    let mut config = Config {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb: [0; 16],
        rows: [0; 16],
    };
    config.colsb[..8].fill(ROW_BYTES as u16);
    config.rows[..8].fill(TILE_ROWS as u8);
    std::arch::asm!("ldtilecfg [{}]", in(reg) &raw const config, options(nostack, readonly));
    body();
    std::arch::asm!("tilerelease", options(nostack, nomem));
}

/// `c[i][j] (+)= a_i · b_j` for `R` row tiles and `C` column tiles (1 or 2 each): result tiles
/// in `tmm0`–`tmm3`, `a` in `tmm4`–`tmm5`, `b` in `tmm6`–`tmm7`. Each sum adds the chunks in
/// order, so a result does not depend on which block its tile is in.
///
/// # Safety
/// Inside [`with_tiles`]; every tile the block and `c` describe must be readable (and `c`
/// writable) memory.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub unsafe fn block<const R: usize, const C: usize>(
    op: &Block,
    c: &[[CTile; 2]; 2],
    accumulate: bool,
) {
    use std::arch::asm;
    // A tile instruction names its registers in the text, so each register gets its own line.
    macro_rules! each_c {
        ($($i:literal, $j:literal, $reg:literal);*) => {$(
            if $i < R && $j < C {
                let t = c[$i][$j];
                if accumulate {
                    asm!(concat!("tileloadd ", $reg, ", [{p} + {s}*1]"), p = in(reg) t.ptr,
                        s = in(reg) t.stride, options(nostack, readonly));
                } else {
                    asm!(concat!("tilezero ", $reg), options(nostack, nomem));
                }
            }
        )*};
    }
    each_c!(0, 0, "tmm0"; 0, 1, "tmm1"; 1, 0, "tmm2"; 1, 1, "tmm3");
    for kc in 0..op.chunks {
        let (a0, b0) = (
            op.a[0].byte_add(kc * ROW_BYTES),
            op.b[0].byte_add(kc * 1024),
        );
        asm!("tileloadd tmm4, [{p} + {s}*1]", p = in(reg) a0, s = in(reg) op.a_stride,
            options(nostack, readonly));
        asm!("tileloadd tmm6, [{p} + {s}*1]", p = in(reg) b0, s = in(reg) ROW_BYTES,
            options(nostack, readonly));
        if C == 2 {
            let b1 = op.b[1].byte_add(kc * 1024);
            asm!("tileloadd tmm7, [{p} + {s}*1]", p = in(reg) b1, s = in(reg) ROW_BYTES,
                options(nostack, readonly));
        }
        if R == 2 {
            let a1 = op.a[1].byte_add(kc * ROW_BYTES);
            asm!("tileloadd tmm5, [{p} + {s}*1]", p = in(reg) a1, s = in(reg) op.a_stride,
                options(nostack, readonly));
        }
        asm!("tdpbf16ps tmm0, tmm4, tmm6", options(nostack, nomem));
        if C == 2 {
            asm!("tdpbf16ps tmm1, tmm4, tmm7", options(nostack, nomem));
        }
        if R == 2 {
            asm!("tdpbf16ps tmm2, tmm5, tmm6", options(nostack, nomem));
            if C == 2 {
                asm!("tdpbf16ps tmm3, tmm5, tmm7", options(nostack, nomem));
            }
        }
    }
    macro_rules! store_c {
        ($($i:literal, $j:literal, $reg:literal);*) => {$(
            if $i < R && $j < C {
                let t = c[$i][$j];
                asm!(concat!("tilestored [{p} + {s}*1], ", $reg), p = in(reg) t.ptr,
                    s = in(reg) t.stride, options(nostack));
            }
        )*};
    }
    store_c!(0, 0, "tmm0"; 0, 1, "tmm1"; 1, 0, "tmm2"; 1, 1, "tmm3");
}
