/**
 * Compiles the native oracle runner (runner.c) into tests/oracle/build/runner.
 *
 * The runner must be a 32-bit i386 process so that the host CPU executes the
 * same instruction bytes our emulator does; that needs gcc with -m32 support
 * (Debian/Ubuntu: `apt-get install gcc-multilib`). The build directory is
 * gitignored: only the fixtures the runner produces are committed.
 *
 * Usage: `deno task oracle:build`
 *
 * @module
 */

const here = new URL(".", import.meta.url).pathname;

/** Path of the compiled runner binary. */
export const RUNNER_PATH: string = `${here}build/runner`;

/** Compile runner.c; throws with a readable message when gcc -m32 is unusable. */
export async function buildRunner(): Promise<string> {
  await Deno.mkdir(`${here}build`, { recursive: true });
  const args = [
    "-m32",
    "-O1",
    "-no-pie",
    "-fno-pie",
    "-Wall",
    "-Wextra",
    "-o",
    RUNNER_PATH,
    `${here}runner.c`,
  ];
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("gcc", { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    throw new Error(
      `cannot run gcc (${(e as Error).message}).\n` +
        "Install a compiler with 32-bit support: apt-get install gcc-multilib",
    );
  }
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    const hint = /bits\/|gnu\/stubs-32|cannot find -lgcc|crt1\.o|skipping incompatible/.test(err)
      ? "\n\ngcc cannot build 32-bit programs here: apt-get install gcc-multilib"
      : "";
    throw new Error(`gcc failed:\n${err}${hint}`);
  }
  if (err.trim()) console.error(err);
  return RUNNER_PATH;
}

if (import.meta.main) {
  try {
    const p = await buildRunner();
    console.log(`built ${p}`);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  }
}
