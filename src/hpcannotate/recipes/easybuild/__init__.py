"""EasyBuild easyconfigs (*.eb), evaluated with EasyBuild's own parser in a sandbox."""
