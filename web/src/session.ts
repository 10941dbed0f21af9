// The token lives in this tab's sessionStorage only: never in a URL, never in localStorage.
const KEY = "virga.token";

export function token(): string | null {
  return sessionStorage.getItem(KEY);
}

export function logIn(value: string): void {
  sessionStorage.setItem(KEY, value.trim());
}

export function logOut(): void {
  sessionStorage.removeItem(KEY);
}
