// Asking the server again while a page waits on someone else (the operator ships a prize,
// WeChat Pay ends a refund): every few seconds while the page is visible, at once when it is
// shown again, never two at a time. `keep(true)` after each answer that still waits.
export class Refresher {
  constructor(task, ms) {
    this.task = task;
    this.ms = ms;
    this.wanted = false;
    this.timer = null;
    this.running = false;
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) clearTimeout(this.timer);
      else if (this.wanted) this.run();
    });
  }

  keep(wanted) {
    this.wanted = Boolean(wanted);
    clearTimeout(this.timer);
    this.timer = this.wanted && !document.hidden ? setTimeout(() => this.run(), this.ms) : null;
  }

  async run() {
    clearTimeout(this.timer);
    if (this.running) return;
    this.running = true;
    try {
      await this.task();
    } finally {
      this.running = false;
    }
  }
}
