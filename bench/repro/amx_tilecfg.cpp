// Why a native llama.cpp build died with "Illegal instruction" on CPUs with AMX (issue 12), reproduced from codegen
// alone, on any x86-64 machine with GCC 12 (Debian bookworm's):
//
//   g++ -O3 -march=sapphirerapids -c bench/repro/amx_tilecfg.cpp -o /tmp/t.o && objdump -d --no-show-raw-insn /tmp/t.o
//
// The function below has the shape of ggml's ggml_tile_config_init (ggml-cpu/amx/mmq.cpp in llama.cpp as vendored by
// llama-cpp-python 0.3.36): fill a 64-byte tile configuration on the stack, load it with _tile_loadconfig, then use
// a tile. GCC 12's amxtileintrin.h declares ldtilecfg's memory operand as `*(const void **)config`, 8 bytes, so at
// -O3 the stores to rows[] and colsb[] (bytes 16..63) are dead to the compiler and dropped: the listing shows the 64
// bytes zeroed, palette_id set to 1, then `ldtilecfg`. Every tile is configured with 0 rows and 0 bytes per row, and
// the first `tileloadd` raises #UD, which Linux delivers as SIGILL. Only -march=native on an AMX CPU (or explicit
// GGML_AMX_* flags) compiles ggml's AMX path in; the portable build (scripts/llama_build.py) leaves it out.
#include <immintrin.h>

#include <cstdint>

struct tile_config_t {
    uint8_t palette_id = 0;
    uint8_t start_row = 0;
    uint8_t reserved_0[14] = {0};
    uint16_t colsb[16] = {0};
    uint8_t rows[16] = {0};
};

static void tile_config_init() {
    static thread_local bool done = false;
    if (done) return;
    alignas(64) tile_config_t tc = {};
    tc.palette_id = 1;
    for (int i = 0; i < 8; ++i) {
        tc.rows[i] = i < 2 ? 8 : 16;
        tc.colsb[i] = (i == 2 || i == 3) ? 32 : 64;
    }
    _tile_loadconfig(&tc);
    done = true;
}

extern "C" void load_one_tile(const void* a, int stride) {
    tile_config_init();
    _tile_loadd(0, a, stride);
    _tile_release();
}
