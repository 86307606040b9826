/** The web console's entry: styles, then the app in #app (docs/console.md). */
import 'uplot/dist/uPlot.min.css';
import './console.css';
import { render } from 'preact';
import { ConsoleApp } from './console-app.js';

const root = document.getElementById('app');
if (root !== null) {
  root.textContent = '';
  render(<ConsoleApp />, root);
}
