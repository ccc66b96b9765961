// Preact with htm's tagged templates: components without a build step.
import { h, render, Fragment, createContext } from '../vendor/preact.js';
import htm from '../vendor/htm.js';

export const html = htm.bind(h);
export { h, render, Fragment, createContext };
export { useState, useEffect, useRef, useCallback, useMemo, useContext } from '../vendor/hooks.js';
