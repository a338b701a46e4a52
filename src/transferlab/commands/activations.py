def add_parser(s): pass
def run(a): pass
