/**
 * Include/exclude patterns over archive paths. `*` matches within one path segment, `**`
 * across segments, `?` one character. A pattern without a slash also matches a bare file
 * name anywhere (as in .gitignore): `*.pyc` excludes every .pyc.
 */
function toRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      i++;
      if (glob[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

export class PathFilter {
  private readonly include: RegExp[];
  private readonly exclude: RegExp[];
  private readonly includeBase: boolean[];
  private readonly excludeBase: boolean[];

  constructor(include: string[], exclude: string[]) {
    this.include = include.map(toRegExp);
    this.exclude = exclude.map(toRegExp);
    this.includeBase = include.map((g) => !g.includes('/'));
    this.excludeBase = exclude.map((g) => !g.includes('/'));
  }

  private static any(res: RegExp[], base: boolean[], path: string): boolean {
    const slash = path.lastIndexOf('/');
    const name = slash < 0 ? path : path.slice(slash + 1);
    return res.some((re, i) => re.test(path) || (base[i] && re.test(name)));
  }

  /** True when there are no globs: every path is accepted. */
  get acceptsAll(): boolean {
    return this.include.length === 0 && this.exclude.length === 0;
  }

  /** True when a file at `path` (relative, no trailing slash) is to be loaded. */
  accepts(path: string): boolean {
    if (this.include.length > 0 && !PathFilter.any(this.include, this.includeBase, path)) return false;
    return !PathFilter.any(this.exclude, this.excludeBase, path);
  }
}
