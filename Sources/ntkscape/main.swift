import ArgumentParser
import Core
