"""The engine's self-description: which settings it picks on a machine and why (the doctor line
of `rewardscale models`), from given facts, so each branch of the reasoning is checked."""

from typer.testing import CliRunner

from rewardscale.backends.engine_info import build_simd, choices, default_threads, host_simd
from rewardscale.cli import app

AVX2_BUILD = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 0 | OPENMP = 1 |"
CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma f16c avx512f avx512_vnni bmi2\n"


def test_features_are_read_from_cpuinfo_and_the_build():
    assert host_simd(CPUINFO) == {"avx2", "fma", "f16c", "avx512f", "avx512_vnni"}
    assert host_simd("no flags here") == set()
    assert build_simd(AVX2_BUILD) == {"avx2", "f16c", "fma"}
    assert default_threads(2) == 2 and default_threads(0) == 1


def test_an_avx512_host_is_told_the_wheel_does_not_use_it():
    lines = choices(8, None, 4096, 2, AVX2_BUILD, host_simd(CPUINFO))
    assert lines[0].startswith("llama.cpp engine: 8 slot(s) x 4,096 tokens") and "2 thread(s) on 2 core(s)" in lines[0]
    assert "can be faster with --parallel 1" in lines[1] and "a KV cache per slot" in lines[0]
    assert "this CPU also has AVX512F AVX512_VNNI" in lines[2]


def test_a_big_machine_with_a_matching_build_gets_no_warnings():
    lines = choices(16, 8, 2048, 64, AVX2_BUILD, {"avx2", "fma", "f16c"})
    assert "8 thread(s) on 64 core(s) (--threads)" in lines[0]
    assert "--parallel 1" not in lines[1] and "every SIMD feature" in lines[2]


def test_models_prints_the_engine_line():
    out = CliRunner().invoke(app, ["models"])
    assert out.exit_code == 0 and "llama.cpp engine:" in out.output
