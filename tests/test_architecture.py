"The package's layers import one way: no cycle between ganlab modules, counting imports inside functions."
import ast
from pathlib import Path
import ganlab

PACKAGE = Path(ganlab.__file__).parent


def imported_modules(path: Path) -> set[str]:
    "The ganlab modules that the file at `path` imports anywhere (module level, functions, classes)."
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or node.module == 'ganlab' or (node.module or '').startswith('ganlab.'):
                base = node.module or '' if node.level == 1 else (node.module or '').removeprefix('ganlab').lstrip('.')
                if base:
                    found.add(base.split('.')[0])
                else:                                   # from . import x / from ganlab import x
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith('ganlab.'):
                    found.add(alias.name.split('.')[1])
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    "module name -> the ganlab modules it imports (the package's __init__ and generated index left out)."
    modules = {p.stem for p in package.glob('*.py') if not p.stem.startswith('_')}
    return {m: imported_modules(package/f'{m}.py') & modules - {m} for m in modules}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    "A cycle of the directed graph as a list of nodes (first = last), or None when it has none."
    state, stack = {}, []
    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 'done'
        stack.pop()
        return None
    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_detector_finds_a_cycle_and_accepts_a_chain():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None


def test_the_parser_sees_imports_inside_functions(tmp_path):
    src = tmp_path/'m.py'
    src.write_text("from .core import check\ndef f():\n    from ganlab import train\n    import ganlab.data\n"
                   "    from ganlab.losses import get\n    from . import viz\n")
    assert imported_modules(src) == {'core', 'train', 'data', 'losses', 'viz'}


def test_no_import_cycle_between_ganlab_modules():
    graph = import_graph()
    assert {'core', 'losses', 'trainer', 'games', 'recipes', 'train'} <= graph.keys()
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_layers_of_the_training_stack_import_downwards():
    "core -> losses -> regularizers -> callbacks -> tricks -> games -> trainer -> recipes -> train."
    layers = ['core', 'losses', 'regularizers', 'callbacks', 'tricks', 'games', 'trainer', 'recipes', 'train']
    graph = import_graph()
    for i, module in enumerate(layers):
        above = set(layers[i + 1:])
        assert not graph[module] & above, f'{module} imports {sorted(graph[module] & above)}, a higher layer'
