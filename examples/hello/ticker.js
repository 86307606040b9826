// A worker: runs beside `web` on the first replica only; its lines show in `hox logs hello --service runner`.
let ticks = 0;
const timer = setInterval(() => {
  ticks += 1;
  process.stdout.write(`tick ${ticks} (${process.env.HOX_APP_VERSION ?? 'dev'})\n`);
}, 2000);
process.on('SIGTERM', () => {
  clearInterval(timer);
  process.exit(0);
});
