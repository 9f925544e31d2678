/** A part of the page that fails (a render that throws on data it did not expect) shows its
 * error in its place; the rest of the page goes on. Without a boundary React unmounts the
 * whole tree, and one bad message blanks every open page. The part is tried again when
 * ``resetKey`` changes (new data: another symbol, a reload) or on Retry. */

import { Component, type ErrorInfo, type ReactNode } from "react";

interface Props {
  name: string; // what failed, for the message: "chart", "signals panel"
  resetKey?: unknown;
  children: ReactNode;
}

interface State {
  error: Error | null;
  resetKey: unknown;
}

export class ErrorBoundary extends Component<Props, State> {
  state: State = { error: null, resetKey: this.props.resetKey };

  static getDerivedStateFromError(error: unknown): Partial<State> {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  static getDerivedStateFromProps(props: Props, state: State): Partial<State> | null {
    return props.resetKey !== state.resetKey ? { error: null, resetKey: props.resetKey } : null;
  }

  componentDidCatch(error: Error, info: ErrorInfo): void {
    // Kept for whoever opens the console; the page shows the message in place.
    console.warn(`stockapp: the ${this.props.name} failed`, error, info.componentStack);
  }

  render(): ReactNode {
    const { error } = this.state;
    if (!error) return this.props.children;
    return (
      <div className="failed" role="alert" data-testid="failed" data-part={this.props.name}>
        The {this.props.name} failed: {error.message}{" "}
        <button onClick={() => this.setState({ error: null })}>Retry</button>
      </div>
    );
  }
}
